/* Platform for the QEMU stand-ins (mps2-an500 for Cortex-M7, mps3-an547 for Cortex-M55):
 * console output and exit through Arm semihosting (`bkpt 0xab`). Run QEMU with
 *   -semihosting-config enable=on,target=native,chardev=sh0 -chardev stdio,id=sh0
 * so the console goes to stdout (the Makefile's run-qemu does this). */
#include "platform.h"

#include <stddef.h>

#define SYS_WRITEC 0x03
#define SYS_WRITE0 0x04
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int tz_semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ __volatile__("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void tz_platform_init(void) {}

/* SYS_WRITE0 prints NUL-terminated strings, so text goes out in NUL-free chunks through a
 * small buffer (one trap per chunk); an embedded NUL byte goes out alone via SYS_WRITEC. */
void tz_platform_write(const char *s, int n)
{
    char buf[129];
    int i = 0;
    while (i < n) {
        int k = 0;
        if (s[i] == '\0') {
            char c = '\0';
            (void)tz_semihost(SYS_WRITEC, &c);
            i++;
            continue;
        }
        while (i < n && k < (int)sizeof buf - 1 && s[i] != '\0') {
            buf[k++] = s[i++];
        }
        buf[k] = '\0';
        (void)tz_semihost(SYS_WRITE0, buf);
    }
}

void tz_platform_exit(int code)
{
    /* AArch32 SYS_EXIT cannot carry a status; SYS_EXIT_EXTENDED takes {reason, code}. */
    uint32_t block[2];
    block[0] = ADP_STOPPED_APPLICATION_EXIT;
    block[1] = (uint32_t)code;
    (void)tz_semihost(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}

uint64_t tz_platform_ticks(void)
{
    return 0;
}

__attribute__((noinline, used)) void tz_platform_mark(void)
{
    __asm__ __volatile__("" ::: "memory");
}
