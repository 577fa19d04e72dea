/*
 * housekeeping.h - periodic maintenance of the database.
 *
 * Owns: the timer that deletes expired idempotency keys, apart from the
 * readiness ping (which only checks). Every replica runs it, each at
 * PAYTRACKR_HOUSEKEEPING_SECONDS with random jitter so replicas started
 * together do not delete at the same moment; a full batch is followed
 * by the next one a second later. Service thread.
 */
#ifndef PT_HOUSEKEEPING_H
#define PT_HOUSEKEEPING_H

struct server;

/* Schedules the first run (after a jittered interval). */
void housekeeping_start(struct server *srv);

/* Cancels the timer; a job in flight finishes and is dropped. */
void housekeeping_stop(struct server *srv);

#endif
