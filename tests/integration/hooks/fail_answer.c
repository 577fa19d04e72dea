/*
 * fail_answer.c - an LD_PRELOAD shim for test_db_job_cleanup.py: makes a
 * job fail while it builds its answer, after its UPDATE, as running out
 * of memory there would.
 *
 * It wraps cJSON_PrintUnformatted. On each thread, a text holding the
 * marker below is printed normally the first time (the event row) and
 * refused (NULL) the second time in a row (the answer); any other text
 * resets the count.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#define MARKER "fail-the-answer"

typedef struct cJSON cJSON;

char *cJSON_PrintUnformatted(const cJSON *item);

char *cJSON_PrintUnformatted(const cJSON *item)
{
    static __thread int seen;
    char *(*real)(const cJSON *) = (char *(*) (const cJSON *) ) dlsym(RTLD_NEXT, __func__);
    char *text = real(item);
    if (!text || !strstr(text, MARKER)) {
        seen = 0;
        return text;
    }
    if (!seen) {
        seen = 1;
        return text;
    }
    seen = 0;
    free(text);
    return NULL;
}
