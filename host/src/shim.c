/* fbhost: the variadic log_print of struct flb_api, formatting like Fluent Bit's
 * flb_log_print and handing the text to the Rust side. */
#include <stdarg.h>
#include <stdio.h>

extern void fbhost_log_line(int level, const char *msg);

void fbhost_log_print(int level, const char *file, int line, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    (void) file;
    (void) line;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fbhost_log_line(level, buf);
}
