#include "protocol/agent/store.h"
