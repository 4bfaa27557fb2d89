/*
 * A small strict JSON reader for the test programs (RFC 8259: objects, arrays, strings with all
 * escapes, numbers, true, false, null; nothing else, no trailing text, nesting depth <= 32).
 * Test code only: it allocates with malloc. Firmware code never includes it.
 */
#ifndef BIOFEED_JSON_READER_H
#define BIOFEED_JSON_READER_H

#include <stddef.h>

typedef enum json_kind {
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_kind;

typedef struct json_value {
    json_kind kind;
    char *text;                /* JSON_STRING: the UTF-8 bytes, NUL-terminated; JSON_NUMBER: its literal */
    size_t text_length;        /* bytes in text, without the NUL */
    struct json_value *items;  /* JSON_ARRAY: elements; JSON_OBJECT: member values */
    char **keys;               /* JSON_OBJECT: member names, parallel to items */
    size_t n_items;
} json_value;

/*
 * Parse `length` bytes of `text` into *root. Returns 1 on success; else 0 with a message (with the
 * byte offset) in error. Free a parsed value with json_free.
 */
int json_parse(const char *text, size_t length, json_value *root, char *error, size_t error_capacity);

/* Release everything json_parse allocated under *value. */
void json_free(json_value *value);

/* The member `key` of an object, or NULL. */
const json_value *json_member(const json_value *object, const char *key);

#endif /* BIOFEED_JSON_READER_H */
