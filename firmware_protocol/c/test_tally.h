/* Pass / fail counting shared by the C test programs. Test code only. */
#ifndef BIOFEED_TEST_TALLY_H
#define BIOFEED_TEST_TALLY_H

#include <stdarg.h>
#include <stdio.h>

typedef struct tally {
    unsigned long passed;
    unsigned long failed;
} tally;

/* Count one check; print what failed (printf-style) when `ok` is 0. Returns ok. */
static inline int check(tally *t, int ok, const char *format, ...)
{
    va_list args;
    if (ok) {
        ++t->passed;
        return 1;
    }
    ++t->failed;
    fputs("FAIL ", stdout);
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    fputc('\n', stdout);
    return 0;
}

/* Print the summary line `N passed, M failed` on its own line; returns the exit status. */
static inline int report(const tally *t)
{
    printf("%lu passed, %lu failed\n", t->passed, t->failed);
    return t->failed == 0 && t->passed > 0 ? 0 : 1;
}

#endif /* BIOFEED_TEST_TALLY_H */
