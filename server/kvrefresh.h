/*
 * kvrefresh.h - the one thread that reads the database connection string
 * from Key Vault and publishes it.
 *
 * Owns: a thread of its own, its copy of the Key Vault settings, and the
 * latest connection string it read. kv_fetch_secret blocks (timeouts,
 * retries, Retry-After sleeps: minutes with a throttled IMDS), so it runs
 * here and nowhere else: database workers only read what was published
 * (kvrefresh_current) and, when connecting with it fails, ask for a fresh
 * read (kvrefresh_stale); neither call ever waits on the network.
 *
 * Reads happen at start, then when asked, at most once per
 * KVREFRESH_MIN_MS (a failed read is retried at that pace while asked).
 */
#ifndef PT_KVREFRESH_H
#define PT_KVREFRESH_H

#include "keyvault.h"
#include "log.h"

#define KVREFRESH_MIN_MS 15000

struct kvrefresh;

/* Starts the thread, which reads at once. `kv` and its strings are copied;
 * `log` must outlive the thread (the server's logger lives until exit).
 * Returns NULL when memory or the thread could not be had. */
struct kvrefresh *kvrefresh_start(const kv_config *kv, const struct logger *log);

/* A malloc'd copy of the latest connection string (the caller wipes and
 * frees it with db_wipe_free), or NULL when none was read yet. Any thread;
 * never blocks on the network. */
char *kvrefresh_current(void *refresher);

/* Connecting with the published string failed (a rotated password?): read
 * again when allowed. Any thread; returns at once. */
void kvrefresh_stale(void *refresher);

/* Stops the thread. A read in progress is not waited for: the thread is
 * left to finish it and frees what it holds itself. Call after everything
 * that reads (the pool, the listener) has stopped. */
void kvrefresh_stop(struct kvrefresh *r);

#endif
