/* Strict JSON reader for the test programs. See json_reader.h. */
#include "json_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

typedef struct parser {
    const char *text;
    size_t length;
    size_t position;
    char *error;
    size_t error_capacity;
    int failed;
} parser;

static int fail(parser *p, const char *message)
{
    if (!p->failed) {
        snprintf(p->error, p->error_capacity, "%s at byte %lu", message, (unsigned long)p->position);
        p->failed = 1;
    }
    return 0;
}

static void skip_whitespace(parser *p)
{
    while (p->position < p->length) {
        char c = p->text[p->position];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return;
        }
        ++p->position;
    }
}

static int peek(const parser *p)
{
    return p->position < p->length ? (unsigned char)p->text[p->position] : -1;
}

static int expect_literal(parser *p, const char *literal)
{
    size_t n = strlen(literal);
    if (p->length - p->position < n || memcmp(p->text + p->position, literal, n) != 0) {
        return fail(p, "invalid literal");
    }
    p->position += n;
    return 1;
}

/* Growable byte buffer for strings. */
typedef struct bytes {
    char *data;
    size_t length;
    size_t capacity;
} bytes;

static int append_byte(parser *p, bytes *b, unsigned value)
{
    if (b->length + 1 >= b->capacity) {
        size_t capacity = b->capacity ? 2 * b->capacity : 32;
        char *grown = realloc(b->data, capacity);
        if (grown == NULL) {
            return fail(p, "out of memory");
        }
        b->data = grown;
        b->capacity = capacity;
    }
    b->data[b->length++] = (char)value;
    b->data[b->length] = '\0';
    return 1;
}

static int append_utf8(parser *p, bytes *b, unsigned long code_point)
{
    if (code_point < 0x80) {
        return append_byte(p, b, (unsigned)code_point);
    }
    if (code_point < 0x800) {
        return append_byte(p, b, (unsigned)(0xC0 | (code_point >> 6)))
               && append_byte(p, b, (unsigned)(0x80 | (code_point & 0x3F)));
    }
    if (code_point < 0x10000) {
        return append_byte(p, b, (unsigned)(0xE0 | (code_point >> 12)))
               && append_byte(p, b, (unsigned)(0x80 | ((code_point >> 6) & 0x3F)))
               && append_byte(p, b, (unsigned)(0x80 | (code_point & 0x3F)));
    }
    return append_byte(p, b, (unsigned)(0xF0 | (code_point >> 18)))
           && append_byte(p, b, (unsigned)(0x80 | ((code_point >> 12) & 0x3F)))
           && append_byte(p, b, (unsigned)(0x80 | ((code_point >> 6) & 0x3F)))
           && append_byte(p, b, (unsigned)(0x80 | (code_point & 0x3F)));
}

static int read_hex4(parser *p, unsigned long *value)
{
    int i;
    *value = 0;
    for (i = 0; i < 4; ++i) {
        int c = peek(p);
        unsigned digit;
        if (c >= '0' && c <= '9') {
            digit = (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            digit = (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            digit = (unsigned)(c - 'A' + 10);
        } else {
            return fail(p, "bad \\u escape");
        }
        *value = *value * 16 + digit;
        ++p->position;
    }
    return 1;
}

static int read_escape(parser *p, bytes *b)
{
    int c = peek(p);
    unsigned long code_point, low;
    ++p->position;
    switch (c) {
    case '"': return append_byte(p, b, '"');
    case '\\': return append_byte(p, b, '\\');
    case '/': return append_byte(p, b, '/');
    case 'b': return append_byte(p, b, '\b');
    case 'f': return append_byte(p, b, '\f');
    case 'n': return append_byte(p, b, '\n');
    case 'r': return append_byte(p, b, '\r');
    case 't': return append_byte(p, b, '\t');
    case 'u':
        if (!read_hex4(p, &code_point)) {
            return 0;
        }
        if (code_point >= 0xDC00 && code_point <= 0xDFFF) {
            return fail(p, "lone low surrogate");
        }
        if (code_point >= 0xD800 && code_point <= 0xDBFF) {
            if (!expect_literal(p, "\\u") || !read_hex4(p, &low)) {
                return fail(p, "high surrogate without low surrogate");
            }
            if (low < 0xDC00 || low > 0xDFFF) {
                return fail(p, "high surrogate without low surrogate");
            }
            code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
        }
        return append_utf8(p, b, code_point);
    default:
        return fail(p, "bad escape");
    }
}

static int parse_string(parser *p, char **out, size_t *out_length)
{
    bytes b = {NULL, 0, 0};
    ++p->position; /* opening quote */
    if (!append_byte(p, &b, 0)) {
        return 0;
    }
    b.length = 0;
    for (;;) {
        int c = peek(p);
        if (c < 0) {
            free(b.data);
            return fail(p, "unterminated string");
        }
        if (c == '"') {
            ++p->position;
            break;
        }
        if (c < 0x20) {
            free(b.data);
            return fail(p, "control character in string");
        }
        if (c == '\\') {
            ++p->position;
            if (!read_escape(p, &b)) {
                free(b.data);
                return 0;
            }
            continue;
        }
        /* Other bytes, including UTF-8 sequences, are copied as they are. */
        if (!append_byte(p, &b, (unsigned)c)) {
            free(b.data);
            return 0;
        }
        ++p->position;
    }
    *out = b.data;
    *out_length = b.length;
    return 1;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int parse_number(parser *p, json_value *value)
{
    size_t start = p->position;
    if (peek(p) == '-') {
        ++p->position;
    }
    if (peek(p) == '0') {
        ++p->position;
    } else if (is_digit(peek(p))) {
        while (is_digit(peek(p))) {
            ++p->position;
        }
    } else {
        return fail(p, "bad number");
    }
    if (peek(p) == '.') {
        ++p->position;
        if (!is_digit(peek(p))) {
            return fail(p, "bad fraction");
        }
        while (is_digit(peek(p))) {
            ++p->position;
        }
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        ++p->position;
        if (peek(p) == '+' || peek(p) == '-') {
            ++p->position;
        }
        if (!is_digit(peek(p))) {
            return fail(p, "bad exponent");
        }
        while (is_digit(peek(p))) {
            ++p->position;
        }
    }
    value->kind = JSON_NUMBER;
    value->text_length = p->position - start;
    value->text = malloc(value->text_length + 1);
    if (value->text == NULL) {
        return fail(p, "out of memory");
    }
    memcpy(value->text, p->text + start, value->text_length);
    value->text[value->text_length] = '\0';
    return 1;
}

static int parse_value(parser *p, json_value *value, int depth);

/* Append a zeroed item (and for objects a key) to a container value. */
static json_value *add_item(parser *p, json_value *container, char *key)
{
    json_value *items = realloc(container->items, (container->n_items + 1) * sizeof *items);
    if (items == NULL) {
        fail(p, "out of memory");
        return NULL;
    }
    container->items = items;
    if (container->kind == JSON_OBJECT) {
        char **keys = realloc(container->keys, (container->n_items + 1) * sizeof *keys);
        if (keys == NULL) {
            fail(p, "out of memory");
            return NULL;
        }
        container->keys = keys;
        keys[container->n_items] = key;
    }
    memset(&items[container->n_items], 0, sizeof *items);
    return &items[container->n_items++];
}

static int parse_container(parser *p, json_value *value, int depth)
{
    char close = value->kind == JSON_ARRAY ? ']' : '}';
    ++p->position; /* opening bracket */
    skip_whitespace(p);
    if (peek(p) == close) {
        ++p->position;
        return 1;
    }
    for (;;) {
        char *key = NULL;
        size_t key_length;
        json_value *item;
        skip_whitespace(p);
        if (value->kind == JSON_OBJECT) {
            if (peek(p) != '"' || !parse_string(p, &key, &key_length)) {
                return fail(p, "expected a member name");
            }
            if (json_member(value, key) != NULL) {
                free(key);
                return fail(p, "repeated member name");
            }
            skip_whitespace(p);
            if (peek(p) != ':') {
                free(key);
                return fail(p, "expected ':'");
            }
            ++p->position;
        }
        item = add_item(p, value, key);
        if (item == NULL) {
            free(key);
            return 0;
        }
        if (!parse_value(p, item, depth + 1)) {
            return 0;
        }
        skip_whitespace(p);
        if (peek(p) == ',') {
            ++p->position;
            continue;
        }
        if (peek(p) == close) {
            ++p->position;
            return 1;
        }
        return fail(p, value->kind == JSON_ARRAY ? "expected ',' or ']'" : "expected ',' or '}'");
    }
}

static int parse_value(parser *p, json_value *value, int depth)
{
    int c;
    if (depth > MAX_DEPTH) {
        return fail(p, "nested too deeply");
    }
    skip_whitespace(p);
    c = peek(p);
    switch (c) {
    case '{':
        value->kind = JSON_OBJECT;
        return parse_container(p, value, depth);
    case '[':
        value->kind = JSON_ARRAY;
        return parse_container(p, value, depth);
    case '"':
        value->kind = JSON_STRING;
        return parse_string(p, &value->text, &value->text_length);
    case 't':
        value->kind = JSON_TRUE;
        return expect_literal(p, "true");
    case 'f':
        value->kind = JSON_FALSE;
        return expect_literal(p, "false");
    case 'n':
        value->kind = JSON_NULL;
        return expect_literal(p, "null");
    default:
        return parse_number(p, value);
    }
}

int json_parse(const char *text, size_t length, json_value *root, char *error, size_t error_capacity)
{
    parser p;
    p.text = text;
    p.length = length;
    p.position = 0;
    p.error = error;
    p.error_capacity = error_capacity;
    p.failed = 0;
    memset(root, 0, sizeof *root);
    if (parse_value(&p, root, 0)) {
        skip_whitespace(&p);
        if (p.position == p.length) {
            return 1;
        }
        fail(&p, "text after the JSON value");
    }
    json_free(root);
    return 0;
}

void json_free(json_value *value)
{
    size_t i;
    for (i = 0; i < value->n_items; ++i) {
        json_free(&value->items[i]);
        if (value->keys != NULL) {
            free(value->keys[i]);
        }
    }
    free(value->items);
    free(value->keys);
    free(value->text);
    memset(value, 0, sizeof *value);
}

const json_value *json_member(const json_value *object, const char *key)
{
    size_t i;
    if (object->kind != JSON_OBJECT) {
        return NULL;
    }
    for (i = 0; i < object->n_items; ++i) {
        if (strcmp(object->keys[i], key) == 0) {
            return &object->items[i];
        }
    }
    return NULL;
}
