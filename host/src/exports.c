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

/* The input functions the fluent-bit executable exports, which the plugin's event-driven
 * hand-off calls (signatures as in Fluent Bit's flb_input.h and flb_input_log.h). fbhost
 * implements them in Rust and registers the implementations once. */
typedef int (*fbhost_collect_fn)(void *ins, void *config, void *context);

static int (*impl_set_collector_event)(void *, fbhost_collect_fn, int, void *);
static int (*impl_log_append_records)(void *, size_t, const char *, size_t, const void *, size_t);
static int (*impl_collector_delete)(int, void *);

void fbhost_set_input_functions(int (*set_event)(void *, fbhost_collect_fn, int, void *),
                                int (*append)(void *, size_t, const char *, size_t,
                                              const void *, size_t),
                                int (*delete_fn)(int, void *))
{
    impl_set_collector_event = set_event;
    impl_log_append_records = append;
    impl_collector_delete = delete_fn;
}

int flb_input_set_collector_event(void *ins, fbhost_collect_fn cb, int fd, void *config)
{
    return impl_set_collector_event ? impl_set_collector_event(ins, cb, fd, config) : -1;
}

int flb_input_log_append_records(void *ins, size_t records, const char *tag, size_t tag_len,
                                 const void *buf, size_t buf_size)
{
    return impl_log_append_records
               ? impl_log_append_records(ins, records, tag, tag_len, buf, buf_size)
               : -1;
}

int flb_input_collector_delete(int coll_id, void *ins)
{
    return impl_collector_delete ? impl_collector_delete(coll_id, ins) : -1;
}

/* Present from Fluent Bit 5.0.0 on; the plugin only looks it up, as a version marker. */
int flb_input_ingress_enable(void *ins)
{
    (void) ins;
    return -1;
}
