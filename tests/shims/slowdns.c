/*
 * slowdns.c - libslowdns.so, an LD_PRELOAD shim for the integration tests:
 * a name server that takes its time, without a name server.
 *
 * getaddrinfo() for the name in PAYTRACKR_SLOWDNS_NAME sleeps
 * PAYTRACKR_SLOWDNS_MS milliseconds on the calling thread, then answers
 * as for 127.0.0.1. Every other name goes to the C library unchanged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
                              struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    getaddrinfo_fn real;
    const char *name = getenv("PAYTRACKR_SLOWDNS_NAME");
    const char *ms_text = getenv("PAYTRACKR_SLOWDNS_MS");

    *(void **) &real = dlsym(RTLD_NEXT, "getaddrinfo");
    if (real == NULL)
        return EAI_SYSTEM;
    if (node != NULL && name != NULL && strcmp(node, name) == 0) {
        long ms = ms_text ? strtol(ms_text, NULL, 10) : 0;
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) != 0) {
        }
        node = "127.0.0.1";
    }
    return real(node, service, hints, res);
}
