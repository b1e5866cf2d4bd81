/*
 * Fluent Bit external ("proxy") input plugin ABI, as seen by a plugin.
 *
 * Written for this project from the observed ABI (docs/abi.md and the offsets checked in
 * src/ffi/abi.rs tests). Field order and types mirror these Fluent Bit files; the version
 * after each struct name is the first Fluent Bit release with that exact layout.
 *
 *   include/fluent-bit/flb_plugin_proxy.h   flb_plugin_proxy_def, flb_plugin_input_proxy_context
 *   src/proxy/go/go.h                       flbgo_input_plugin
 *   include/fluent-bit/flb_api.h            flb_api
 *   include/fluent-bit/flb_config_map.h     flb_config_map
 *
 * Older layouts are declared too (suffix _v2_0 etc.): the plugin must detect which one the
 * host gave it before writing anything, and the test host allocates exactly these sizes.
 * x86_64 / aarch64 LP64 only.
 */
#ifndef MIMECAST_FLB_PROXY_ABI_H
#define MIMECAST_FLB_PROXY_ABI_H

#include <stddef.h>
#include <stdint.h>

/* Plugin types (flb_plugin_proxy.h, FLB_PROXY_*_PLUGIN). */
#define FLB_PROXY_INPUT_PLUGIN 1
#define FLB_PROXY_OUTPUT_PLUGIN 2
#define FLB_PROXY_CUSTOM_PLUGIN 3

/* Proxy kind (flb_plugin_proxy.h, FLB_PROXY_GOLANG): the only one the loader knows. */
#define FLB_PROXY_GOLANG 11

/* Input flag forced on by the loader (flb_input.h, FLB_INPUT_THREADED). */
#define FLB_INPUT_THREADED 0x400

/* Log levels (flb_log.h, FLB_LOG_*). */
#define FLB_LOG_OFF 0
#define FLB_LOG_ERROR 1
#define FLB_LOG_WARN 2
#define FLB_LOG_INFO 3
#define FLB_LOG_DEBUG 4
#define FLB_LOG_TRACE 5

/* Return codes of the Go-style callbacks (fluent-bit-go output package). */
#define FLB_ERROR 0
#define FLB_OK 1
#define FLB_RETRY 2

/* Config map types and flags (flb_config_map.h). */
#define FLB_CONFIG_MAP_STR 0
#define FLB_CONFIG_MAP_STR_PREFIX 1
#define FLB_CONFIG_MAP_INT 2
#define FLB_CONFIG_MAP_BOOL 3
#define FLB_CONFIG_MAP_DOUBLE 4
#define FLB_CONFIG_MAP_SIZE 5
#define FLB_CONFIG_MAP_TIME 6
#define FLB_CONFIG_MAP_DEPRECATED 7
#define FLB_CONFIG_MAP_CLIST 30
#define FLB_CONFIG_MAP_SLIST 40
#define FLB_CONFIG_MAP_MULT 1
#define FLB_CONFIG_MAP_DYNAMIC_ENV 2

/* Opaque host objects. */
struct flb_input_instance;
struct flb_output_instance;
struct flb_custom_instance;
struct flb_plugin_proxy;

/* flb_config_map.h: struct flb_config_map (v5.1.1 reads it from the def). 104 bytes. */
struct flb_config_map {
    int type;
    char *name;
    char *def_value;
    int flags;
    int set_property;
    uintptr_t offset;
    char *desc;
    unsigned char value[40]; /* struct flb_config_map_val: host scratch, zeroed */
    void *_head[2];          /* struct mk_list: host scratch, zeroed */
};

/* flb_plugin_proxy.h: struct flb_plugin_proxy_def, v2.0.0 .. v4.x. 32 bytes. */
struct flb_plugin_proxy_def_v2_0 {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
};

/* flb_plugin_proxy.h: struct flb_plugin_proxy_def, v5.0.0 .. v5.1.0 (event_type). 40 bytes. */
struct flb_plugin_proxy_def_v5_0 {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
    int event_type;
};

/* flb_plugin_proxy.h: struct flb_plugin_proxy_def, v5.1.1+ (config_map). 48 bytes. */
struct flb_plugin_proxy_def {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
    int event_type;
    struct flb_config_map *config_map;
};

/* flb_plugin_proxy.h: struct flb_plugin_input_proxy_context, v2.0.0 .. v4.0.x. 16 bytes.
 * There is NO remote_context: offset 8 is the host's proxy pointer. */
struct flb_plugin_input_proxy_context_v2_0 {
    int coll_fd;
    struct flb_plugin_proxy *proxy;
};

/* flb_plugin_proxy.h: struct flb_plugin_input_proxy_context, v4.1.0+. 24 bytes. */
struct flb_plugin_input_proxy_context {
    int coll_fd;
    void *remote_context;
    struct flb_plugin_proxy *proxy;
};

/* flb_api.h: struct flb_api, v2.0.0 .. v4.0.2. 56 bytes. */
struct flb_api_v2_0 {
    const char *(*output_get_property)(const char *, struct flb_output_instance *);
    const char *(*input_get_property)(const char *, struct flb_input_instance *);
    void *(*output_get_cmt_instance)(struct flb_output_instance *);
    void *(*input_get_cmt_instance)(struct flb_input_instance *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(struct flb_input_instance *, int);
    int (*output_log_check)(struct flb_output_instance *, int);
};

/* flb_api.h: struct flb_api, v4.0.3+ (custom_* appended). 72 bytes. */
struct flb_api {
    const char *(*output_get_property)(const char *, struct flb_output_instance *);
    const char *(*input_get_property)(const char *, struct flb_input_instance *);
    void *(*output_get_cmt_instance)(struct flb_output_instance *);
    void *(*input_get_cmt_instance)(struct flb_input_instance *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(struct flb_input_instance *, int);
    int (*output_log_check)(struct flb_output_instance *, int);
    const char *(*custom_get_property)(const char *, struct flb_custom_instance *);
    int (*custom_log_check)(struct flb_custom_instance *, int);
};

struct flbgo_input_plugin;

/* src/proxy/go/go.h: struct flbgo_input_plugin, v2.0.0 .. v4.0.x. 64 bytes. */
struct flbgo_input_plugin_v2_0 {
    char *name;
    struct flb_api *api;
    struct flb_input_instance *i_ins;
    struct flb_plugin_input_proxy_context_v2_0 *context;
    int (*cb_init)(struct flbgo_input_plugin *);
    int (*cb_collect)(void **, size_t *);
    int (*cb_cleanup)(void *);
    int (*cb_exit)(void);
};

/* src/proxy/go/go.h: struct flbgo_input_plugin, v4.1.0+ (Ctx callbacks). 80 bytes. */
struct flbgo_input_plugin {
    char *name;
    struct flb_api *api;
    struct flb_input_instance *i_ins;
    struct flb_plugin_input_proxy_context *context;
    int (*cb_init)(struct flbgo_input_plugin *);
    int (*cb_collect)(void **, size_t *);
    int (*cb_collect_ctx)(void *, void **, size_t *);
    int (*cb_cleanup)(void *);
    int (*cb_cleanup_ctx)(void *, void *);
    int (*cb_exit)(void);
};

#endif
