#include "protocol/agent/assistants.h"
