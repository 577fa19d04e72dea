/*
 * args.c - the command line and the environment.
 *
 * --url (env PAYTRACKR_URL, default ws://127.0.0.1:8080), --token-file (a
 * file holding the token; env PAYTRACKR_TOKEN holds the token itself),
 * --ca-file for a private CA, --read-only, --help, --version.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui.h"

#define DEFAULT_URL "ws://127.0.0.1:8080"
#define TOKEN_MAX   4096

#ifndef TUI_VERSION
#define TUI_VERSION "unknown"
#endif

static void usage(FILE *out)
{
    fprintf(out, "usage: " TUI_PROGRAM
                 " [--url URL] [--token-file PATH] [--ca-file PATH] [--read-only]\n"
                 "\n"
                 "The paytrackr operator dashboard.\n"
                 "\n"
                 "  --url URL          ws:// or wss:// address of the server\n"
                 "                     (env PAYTRACKR_URL, default " DEFAULT_URL ")\n"
                 "  --token-file PATH  read the API token from PATH\n"
                 "                     (else env PAYTRACKR_TOKEN holds the token itself)\n"
                 "  --ca-file PATH     trust this CA (PEM) for wss:// instead of the system's\n"
                 "  --read-only        never offer to write, whatever the token may do\n"
                 "  --help             show this and exit\n"
                 "  --version          show the version and exit\n"
                 "\n"
                 "Press ? in the program for its keys.\n");
}

/* Trims trailing white space (a newline at the end of a token file). */
static void rtrim(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

/* Reads the token file; returns a malloc'd token or NULL with *cause. */
static char *read_token_file(const char *path, char **cause)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;

    if (f == NULL) {
        *cause = util_printf("cannot read --token-file %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(TOKEN_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        *cause = util_printf("out of memory");
        return NULL;
    }
    n = fread(buf, 1, TOKEN_MAX + 1, f);
    fclose(f);
    if (n > TOKEN_MAX) {
        free(buf);
        *cause = util_printf("--token-file %s: the token is longer than %d bytes", path, TOKEN_MAX);
        return NULL;
    }
    buf[n] = '\0';
    rtrim(buf);
    if (buf[0] == '\0' || strchr(buf, '\n') != NULL || strchr(buf, '\r') != NULL) {
        free(buf);
        *cause = util_printf("--token-file %s: expected one line holding the token", path);
        return NULL;
    }
    return buf;
}

int args_parse_url(struct args *a, const char *url, char **cause)
{
    const char *rest, *hend, *slash;
    if (strncmp(url, "ws://", 5) == 0) {
        a->tls = false;
        rest = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        a->tls = true;
        rest = url + 6;
    } else {
        *cause = util_printf("--url %s: expected ws://host[:port] or wss://host[:port]", url);
        return -1;
    }
    slash = strchr(rest, '/');
    hend = slash ? slash : rest + strlen(rest);
    free(a->host);
    a->host = NULL;
    a->port = a->tls ? 443 : 80;
    if (rest[0] == '[') {
        const char *close = memchr(rest, ']', (size_t) (hend - rest));

        if (close == NULL) {
            *cause = util_printf("--url %s: unterminated [IPv6] address", url);
            return -1;
        }
        a->host = strndup(rest + 1, (size_t) (close - rest - 1));
        rest = close + 1;
    } else {
        const char *colon = memchr(rest, ':', (size_t) (hend - rest));
        const char *e = colon ? colon : hend;

        a->host = strndup(rest, (size_t) (e - rest));
        rest = e;
    }
    if (a->host == NULL || a->host[0] == '\0') {
        *cause = util_printf("--url %s: no host", url);
        return -1;
    }
    if (rest < hend && rest[0] == ':') {
        char *endp;
        long port;

        errno = 0;
        port = strtol(rest + 1, &endp, 10);
        if (errno != 0 || endp != hend || port < 1 || port > 65535) {
            *cause = util_printf("--url %s: bad port", url);
            return -1;
        }
        a->port = (int) port;
    } else if (rest != hend) {
        *cause = util_printf("--url %s: unexpected text after the host", url);
        return -1;
    }
    free(a->prefix);
    a->prefix = strdup(slash ? slash : "");
    if (a->prefix == NULL) {
        *cause = util_printf("out of memory");
        return -1;
    }
    rtrim(a->prefix);
    while (a->prefix[0] != '\0' && a->prefix[strlen(a->prefix) - 1] == '/')
        a->prefix[strlen(a->prefix) - 1] = '\0';
    if (strpbrk(a->prefix, "?# ") != NULL) {
        *cause = util_printf("--url %s: a query or fragment is not supported", url);
        return -1;
    }
    return 0;
}

int args_parse(int argc, char **argv, struct args *out, char **cause)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"token-file", required_argument, NULL, 't'},
        {"ca-file", required_argument, NULL, 'c'},
        {"read-only", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *token_file = NULL, *env;
    int c;

    memset(out, 0, sizeof *out);
    *cause = NULL;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 't':
            token_file = optarg;
            break;
        case 'c':
            free(out->ca_file);
            out->ca_file = strdup(optarg);
            break;
        case 'r':
            out->read_only = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf(TUI_PROGRAM " %s\n", TUI_VERSION);
            return 1;
        default:
            *cause = util_printf("unknown or incomplete option %s (try --help)", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        *cause = util_printf("unexpected argument %s (try --help)", argv[optind]);
        return -1;
    }
    if (url == NULL) {
        env = getenv("PAYTRACKR_URL");
        url = (env != NULL && env[0] != '\0') ? env : DEFAULT_URL;
    }
    out->url = strdup(url);
    if (out->url == NULL) {
        *cause = util_printf("out of memory");
        return -1;
    }
    if (args_parse_url(out, url, cause) != 0)
        return -1;
    if (token_file != NULL) {
        out->token = read_token_file(token_file, cause);
        if (out->token == NULL)
            return -1;
    } else {
        env = getenv("PAYTRACKR_TOKEN");
        if (env != NULL && env[0] != '\0') {
            out->token = strdup(env);
            if (out->token == NULL) {
                *cause = util_printf("out of memory");
                return -1;
            }
            rtrim(out->token);
        }
    }
    if (out->token != NULL) {
        for (const char *p = out->token; *p; p++) {
            if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e) {
                *cause = util_printf("the token holds a character that cannot go in a header");
                return -1;
            }
        }
    }
    if (out->ca_file != NULL) {
        FILE *f = fopen(out->ca_file, "r");

        if (f == NULL) {
            *cause = util_printf("cannot read --ca-file %s: %s", out->ca_file, strerror(errno));
            return -1;
        }
        fclose(f);
    }
    return 0;
}

void args_free(struct args *a)
{
    free(a->url);
    if (a->token != NULL) {
        memset(a->token, 0, strlen(a->token));
        free(a->token);
    }
    free(a->ca_file);
    free(a->host);
    free(a->prefix);
    memset(a, 0, sizeof *a);
}
