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

/* cmetrics' Prometheus encoder, as the plugin reads an input instance's context with it: the
 * context fbhost hands out (input_get_cmt_instance) is the instance itself, and its one series
 * is Fluent Bit's fluentbit_input_records_total, the records taken into chunks. fbhost counts
 * them in Rust; the text is what cmetrics writes for that series. */
#include <stdio.h>
#include <stdlib.h>

static long long (*impl_records_total)(void *);

void fbhost_set_cmt_functions(long long (*records_total)(void *))
{
    impl_records_total = records_total;
}

char *cmt_encode_prometheus_create(void *cmt, int add_timestamp)
{
    long long n;
    char *text;
    (void) add_timestamp;
    if (!impl_records_total || !cmt) {
        return NULL;
    }
    n = impl_records_total(cmt);
    if (n < 0) {
        return NULL;
    }
    text = malloc(256);
    if (!text) {
        return NULL;
    }
    snprintf(text, 256,
             "# HELP fluentbit_input_records_total Number of input records.\n"
             "# TYPE fluentbit_input_records_total counter\n"
             "fluentbit_input_records_total{name=\"fbhost\"} %.17g\n",
             (double) n);
    return text;
}

void cmt_encode_prometheus_destroy(char *text)
{
    free(text);
}
