/* The timer heap: random arm / move / cancel against a reference model; fire order and budget; a timer
 * armed while timers fire waits for the next ag_timer_run; equal deadlines fire in arming order; the
 * work-budget stop. */
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

/* A 0 ms timer that re-arms itself at the cached `now` from its own callback, as a yielding run does. */
static struct ag_timer_heap *rearm_heap;
static uint64_t rearm_now;
static int rearm_fired;
static void on_rearm(struct ag_timer *t)
{
    rearm_fired++;
    ag_timer_arm(rearm_heap, t, rearm_now);
}

/* Arms `other` due now from inside a callback. */
static struct ag_timer other;
static int other_fired;
static void on_other(struct ag_timer *t)
{
    (void)t;
    other_fired++;
}
static void on_arm_other(struct ag_timer *t)
{
    (void)t;
    ag_timer_arm(rearm_heap, &other, rearm_now);
}

/* Records the order in which timers fire; spends one unit of a work budget each. */
static struct ag_timer seqt[4];
static int seq_order[4], seq_n;
static uint32_t work;
static void on_seq(struct ag_timer *t)
{
    seq_order[seq_n++] = (int)(t - seqt);
    if (work)
        work--;
}

static void check_turn_rules(void)
{
    struct ag_timer_heap h = {0};
    rearm_heap = &h;
    rearm_now = 1000;
    /* A timer re-armed due now from its own callback fires once per run, not budget times. */
    struct ag_timer t;
    ag_timer_init(&t, on_rearm);
    ag_timer_arm(&h, &t, 1000);
    unsigned n = ag_timer_run(&h, 1000, 1024, NULL);
    CHECKF(n == 1 && rearm_fired == 1, "a self-re-arming 0 ms timer fired %u times in one run (want 1)", n);
    CHECK(ag_timer_armed(&t) && ag_timer_next(&h) == 1000);
    n = ag_timer_run(&h, 1000, 1024, NULL);
    CHECKF(n == 1 && rearm_fired == 2, "next run: fired %u, total %d (want 1, 2)", n, rearm_fired);
    ag_timer_cancel(&h, &t);

    /* A timer armed due now by another timer's callback waits for the next run. */
    struct ag_timer a;
    ag_timer_init(&a, on_arm_other);
    ag_timer_init(&other, on_other);
    ag_timer_arm(&h, &a, 900);
    n = ag_timer_run(&h, 1000, 1024, NULL);
    CHECKF(n == 1 && other_fired == 0, "fired %u, other %d (want 1, 0)", n, other_fired);
    n = ag_timer_run(&h, 1000, 1024, NULL);
    CHECKF(n == 1 && other_fired == 1, "next run: fired %u, other %d (want 1, 1)", n, other_fired);

    /* Equal deadlines fire in the order they were armed; a moved timer goes behind. */
    for (int i = 0; i < 4; i++)
        ag_timer_init(&seqt[i], on_seq);
    for (int i = 3; i >= 0; i--)
        ag_timer_arm(&h, &seqt[i], 500);
    ag_timer_arm(&h, &seqt[2], 500); /* moved: now last */
    seq_n = 0;
    n = ag_timer_run(&h, 1000, 1024, NULL);
    CHECKF(n == 4 && seq_order[0] == 3 && seq_order[1] == 1 && seq_order[2] == 0 && seq_order[3] == 2,
           "order %d %d %d %d (want 3 1 0 2)", seq_order[0], seq_order[1], seq_order[2], seq_order[3]);

    /* The stop word: once the budget is spent (after at least one), the rest waits, in order. */
    for (int i = 0; i < 4; i++)
        ag_timer_arm(&h, &seqt[i], 500);
    seq_n = 0;
    work = 2;
    n = ag_timer_run(&h, 1000, 1024, &work);
    CHECKF(n == 2 && seq_order[0] == 0 && seq_order[1] == 1, "with a budget of 2: fired %u (want 2)", n);
    n = ag_timer_run(&h, 1000, 1024, &work); /* spent: still one fires, so the loop always progresses */
    CHECKF(n == 1 && seq_order[2] == 2, "with the budget spent: fired %u (want 1)", n);
    work = 10;
    n = ag_timer_run(&h, 1000, 1024, &work);
    CHECKF(n == 1 && seq_order[3] == 3, "the last: fired %u (want 1)", n);
    ag_timer_heap_free(&h);
}

int main(void)
{
    check_turn_rules();
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
    unsigned n = ag_timer_run(&h, UINT64_MAX, 10, NULL);
    CHECK(n == (unsigned)(armed < 10 ? armed : 10));
    ag_timer_run(&h, UINT64_MAX, 1000000, NULL);
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
    CHECK(ag_timer_run(&h, 100, 100, NULL) == 1);
    CHECK(ag_timer_armed(&timers[1]) && !ag_timer_armed(&timers[0]));
    ag_timer_heap_free(&h);
    return CHECK_DONE();
}
