#include "protocol/agent/threads.h"
