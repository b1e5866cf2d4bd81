/* fbhost: the library version functions the fluent-bit executable exports, which the plugin
 * reads to tell host releases apart. Built as a small shared library that fbhost loads with
 * RTLD_GLOBAL, so the plugin finds these with dlsym(RTLD_DEFAULT, ...) as in Fluent Bit.
 * The version is per thread: fbhost sets its generation's version on the thread that calls
 * FLBPluginRegister, so hosts of different generations can run side by side in one test. */
#include <stddef.h>

static __thread const char *cmt_version_of_thread;

void fbhost_set_cmt_version(const char *version)
{
    cmt_version_of_thread = version;
}

/* cmetrics: char *cmt_version(void). NULL where the emulated host had none set. */
char *cmt_version(void)
{
    return (char *) cmt_version_of_thread;
}
