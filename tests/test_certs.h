/*
 * Test certificates made at run time (tests/certs/make-certs.sh, openssl CLI) into a
 * fresh directory under /tmp, removed when the test program exits. Shared by the
 * TLS tests; everything is static so each test file has its own directory.
 */
#ifndef DX_TEST_CERTS_H
#define DX_TEST_CERTS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_CERTS_PREFIX "/tmp/dx-certs-test-"

static char certdir[256];

/* Make the certificates once (bounded by timeout(1)). */
static bool certs_ready(void) {
    static int state; /* 0 not tried, 1 ok, -1 failed */
    if (state)
        return state > 0;
    state = -1;
    snprintf(certdir, sizeof certdir, TEST_CERTS_PREFIX "XXXXXX");
    if (!mkdtemp(certdir))
        return false;
    const char *src = getenv("DX_SRCDIR");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "timeout 60 sh %s/tests/certs/make-certs.sh %s >/dev/null",
             src ? src : ".", certdir);
    if (system(cmd) != 0)
        return false;
    state = 1;
    return true;
}

__attribute__((destructor)) static void remove_certs(void) {
    if (certdir[0] && strncmp(certdir, TEST_CERTS_PREFIX, strlen(TEST_CERTS_PREFIX)) == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", certdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", certdir);
    }
}

/* Path of a file in the cert directory; eight rotating buffers. */
static const char *cp(const char *name) {
    static char bufs[8][512];
    static int i;
    char *b = bufs[i++ & 7];
    snprintf(b, 512, "%s/%s", certdir, name);
    return b;
}

#endif /* DX_TEST_CERTS_H */
