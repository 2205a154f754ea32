/* The timer heap: random arm / move / cancel against a reference model; fire order and budget. */
#include <stdlib.h>

#include "check.h"
#include "core/timer.h"

#define N 512

static struct ag_timer timers[N];
static uint64_t model[N]; /* deadline, or 0 when not armed */
static uint64_t last_fired;
static int fired, order_errors, model_errors;

static void on_fire(struct ag_timer *t)
{
    int i = (int)(t - timers);
    if (t->deadline_ns < last_fired)
        order_errors++;
    if (model[i] != t->deadline_ns)
        model_errors++;
    last_fired = t->deadline_ns;
    model[i] = 0;
    fired++;
}

int main(void)
{
    struct ag_timer_heap h = {0};
    srand(12345);
    for (int i = 0; i < N; i++)
        ag_timer_init(&timers[i], on_fire);
    for (int round = 0; round < 200000; round++) {
        int i = rand() % N;
        int op = rand() % 3;
        if (op < 2) {
            uint64_t d = 1 + (uint64_t)(rand() % 100000);
            ag_timer_arm(&h, &timers[i], d);
            model[i] = d;
        } else {
            ag_timer_cancel(&h, &timers[i]);
            model[i] = 0;
        }
    }
    int armed = 0;
    uint64_t min = UINT64_MAX;
    for (int i = 0; i < N; i++) {
        CHECK(ag_timer_armed(&timers[i]) == (model[i] != 0));
        if (model[i]) {
            armed++;
            if (model[i] < min)
                min = model[i];
        }
    }
    CHECK(ag_timer_next(&h) == min);
    /* A budget stops early; the rest fires later in deadline order. */
    unsigned n = ag_timer_run(&h, UINT64_MAX, 10);
    CHECK(n == (unsigned)(armed < 10 ? armed : 10));
    ag_timer_run(&h, UINT64_MAX, 1000000);
    CHECK(fired == armed);
    CHECK(order_errors == 0);
    CHECK(model_errors == 0);
    CHECK(ag_timer_next(&h) == UINT64_MAX);
    /* Only due timers fire. */
    ag_timer_arm(&h, &timers[0], 50);
    model[0] = 50;
    ag_timer_arm(&h, &timers[1], 150);
    model[1] = 150;
    last_fired = 0;
    CHECK(ag_timer_run(&h, 100, 100) == 1);
    CHECK(ag_timer_armed(&timers[1]) && !ag_timer_armed(&timers[0]));
    ag_timer_heap_free(&h);
    return CHECK_DONE();
}
