/* The regex front end of _native.c: Python ``re`` syntax (the part the compile stage writes and
 * most user patterns use) parsed and wired into a Thompson NFA over UTF-8 bytes, with the
 * meanings automata/nfa.py gives it (ASCII \d \w \s, "." without "\n", whole-text match);
 * the NFA is wired in _native_thompson.h.
 *
 * Anything else (inline flags, anchors, lookaround, backreferences, possessive repeats, named
 * escapes, syntax errors) returns UNSUPPORTED and the caller takes the Python path, which words
 * the error or handles the construct. Tests compare both paths on random regexes.
 */
#ifndef CDLM_NATIVE_REGEX_H
#define CDLM_NATIVE_REGEX_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RX_UNSUPPORTED (-4)
#define RX_NOMEM (-3)
#define RX_TOO_MANY (-1)
#define MAX_CP 0x10FFFF
#define REPEAT_INF (-1)

enum { N_EMPTY, N_SET, N_CAT, N_ALT, N_REP };

typedef struct {
    int kind;
    int32_t a, b;        /* SET: range span in ranges[]; CAT/ALT: child span in kids[]; REP: child */
    int32_t lo, hi;      /* REP bounds (hi REPEAT_INF: unbounded) */
    int64_t from, to;    /* CAT children: the text they were read from (for sharing) */
} rx_node;

typedef struct {
    const uint32_t *s;
    int64_t n, i;
    rx_node *nodes; int64_t n_nodes, cap_nodes;
    int32_t *kids; int64_t n_kids, cap_kids;
    uint32_t *ranges; int64_t n_ranges, cap_ranges;   /* pairs lo, hi */
    int err;
    int depth;
} rx_parser;

static int rx_grow(void **p, int64_t *cap, int64_t need, size_t size) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * size);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int32_t rx_node_new(rx_parser *p, int kind) {
    if (rx_grow((void **)&p->nodes, &p->cap_nodes, p->n_nodes + 1, sizeof(rx_node))) {
        p->err = RX_NOMEM;
        return -1;
    }
    rx_node *nd = &p->nodes[p->n_nodes];
    memset(nd, 0, sizeof(*nd));
    nd->kind = kind;
    return (int32_t)p->n_nodes++;
}

static int rx_range_add(rx_parser *p, uint32_t lo, uint32_t hi) {
    if (rx_grow((void **)&p->ranges, &p->cap_ranges, p->n_ranges + 2, sizeof(uint32_t))) {
        p->err = RX_NOMEM;
        return -1;
    }
    p->ranges[p->n_ranges++] = lo;
    p->ranges[p->n_ranges++] = hi;
    return 0;
}

static int cmp_range(const void *a, const void *b) {
    const uint32_t *x = (const uint32_t *)a, *y = (const uint32_t *)b;
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

/* Sort and merge the ranges from index `from` (pairs) in place, negating them if asked;
 * returns the new end (pairs start at `from`). */
static int64_t rx_normalize(rx_parser *p, int64_t from, int negate) {
    int64_t n = (p->n_ranges - from) / 2;
    uint32_t *r = p->ranges + from;
    qsort(r, (size_t)n, 2 * sizeof(uint32_t), cmp_range);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (m && r[2 * i] <= r[2 * (m - 1) + 1] + 1) {
            if (r[2 * i + 1] > r[2 * (m - 1) + 1]) r[2 * (m - 1) + 1] = r[2 * i + 1];
        } else {
            r[2 * m] = r[2 * i];
            r[2 * m + 1] = r[2 * i + 1];
            m++;
        }
    }
    p->n_ranges = from + 2 * m;
    if (!negate) return p->n_ranges;
    /* complement within [0, MAX_CP]: at most m + 1 ranges; build after the current ones */
    int64_t base = p->n_ranges;
    uint32_t prev = 0;
    for (int64_t i = 0; i < m; i++) {
        uint32_t lo = p->ranges[from + 2 * i], hi = p->ranges[from + 2 * i + 1];
        if (lo > prev && rx_range_add(p, prev, lo - 1)) return -1;
        prev = hi + 1;
    }
    if (prev <= MAX_CP && rx_range_add(p, prev, MAX_CP)) return -1;
    int64_t k = p->n_ranges - base;
    memmove(p->ranges + from, p->ranges + base, (size_t)k * sizeof(uint32_t));
    p->n_ranges = from + k;
    return p->n_ranges;
}

static int rx_category(rx_parser *p, uint32_t c) {
    /* ASCII meanings, as nfa.py's _CATEGORIES */
    switch (c) {
    case 'd': return rx_range_add(p, '0', '9');
    case 'w':
        return rx_range_add(p, '0', '9') || rx_range_add(p, 'A', 'Z') ||
               rx_range_add(p, '_', '_') || rx_range_add(p, 'a', 'z');
    case 's': return rx_range_add(p, 9, 13) || rx_range_add(p, ' ', ' ');
    }
    return -1;
}

static int hexval(uint32_t c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* An escape after "\" (p->i at the escaped char). Either a code point (*cp, returns 1) or a
 * category added to the ranges as it is or negated (returns 2); 0 unsupported. In a class,
 * "\b" is a backspace. */
static int rx_escape(rx_parser *p, uint32_t *cp, int in_class, int64_t *cat_from) {
    if (p->i >= p->n) return 0;
    uint32_t c = p->s[p->i++];
    switch (c) {
    case 'n': *cp = '\n'; return 1;
    case 't': *cp = '\t'; return 1;
    case 'r': *cp = '\r'; return 1;
    case 'f': *cp = '\f'; return 1;
    case 'v': *cp = '\v'; return 1;
    case 'a': *cp = 7; return 1;
    case 'b': if (in_class) { *cp = 8; return 1; } return 0;
    case 'd': case 'w': case 's': case 'D': case 'W': case 'S': {
        int64_t from = p->n_ranges;
        uint32_t lower = c | 0x20;
        if (rx_category(p, lower)) return 0;
        if (c != lower && rx_normalize(p, from, 1) < 0) return 0;
        *cat_from = from;
        return 2;
    }
    case 'x': case 'u': case 'U': {
        int len = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        uint32_t v = 0;
        for (int k = 0; k < len; k++) {
            if (p->i >= p->n) return 0;
            int h = hexval(p->s[p->i++]);
            if (h < 0) return 0;
            v = v * 16 + (uint32_t)h;
        }
        if (v > MAX_CP) return 0;
        *cp = v;
        return 1;
    }
    }
    if (c < 128 && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
        return 0;       /* \A \Z \B \N{..} \1 octal...: the Python path */
    *cp = c;            /* an escaped punctuation or non-ASCII character stands for itself */
    return 1;
}

static int32_t rx_set_from(rx_parser *p, int64_t from) {
    int32_t id = rx_node_new(p, N_SET);
    if (id < 0) return -1;
    p->nodes[id].a = (int32_t)from;
    p->nodes[id].b = (int32_t)p->n_ranges;
    return id;
}

static int32_t rx_class(rx_parser *p) {          /* after "[" */
    int negate = 0;
    int64_t from = p->n_ranges;
    if (p->i < p->n && p->s[p->i] == '^') { negate = 1; p->i++; }
    int first = 1;
    for (;;) {
        if (p->i >= p->n) return -1;
        uint32_t c = p->s[p->i];
        if (c == ']' && !first) { p->i++; break; }
        first = 0;
        if (c == '[' && p->i + 1 < p->n &&
            (p->s[p->i + 1] == ':' || p->s[p->i + 1] == '=' || p->s[p->i + 1] == '.'))
            return -1;
        uint32_t lo;
        p->i++;
        if (c == '\\') {
            int64_t cat = 0;
            int r = rx_escape(p, &lo, 1, &cat);
            if (r == 2) {
                /* a category: its ranges are in place (from `cat`), keep them in the class */
                if (p->i < p->n && p->s[p->i] == '-' && p->i + 1 < p->n && p->s[p->i + 1] != ']')
                    return -1;
                continue;
            }
            if (r != 1) return -1;
        } else {
            lo = c;
        }
        uint32_t hi = lo;
        if (p->i + 1 < p->n && p->s[p->i] == '-' && p->s[p->i + 1] != ']') {
            p->i++;
            uint32_t d = p->s[p->i++];
            if (d == '\\') {
                int64_t cat = 0;
                if (rx_escape(p, &hi, 1, &cat) != 1) return -1;
            } else {
                hi = d;
            }
            if (hi < lo) return -1;
        }
        if (rx_range_add(p, lo, hi)) return -1;
    }
    if (rx_normalize(p, from, negate) < 0) return -1;
    return rx_set_from(p, from);
}

static int32_t rx_alt(rx_parser *p);

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }

/* "{m}", "{m,}", "{,n}", "{m,n}" at p->i (after "{"): 1 with bounds set, 0 when it is a plain
 * "{" (Python then reads it as a literal and goes on from the same place). */
static int rx_braces(rx_parser *p, int32_t *lo, int32_t *hi) {
    int64_t j = p->i;
    if (j < p->n && p->s[j] == '}') return 0;
    int64_t a = 0, b = 0;
    int has_lo = 0, has_hi = 0, comma = 0;
    while (j < p->n && is_digit(p->s[j])) { a = a * 10 + (p->s[j++] - '0'); has_lo = 1; if (a > 100000) return -1; }
    if (j < p->n && p->s[j] == ',') {
        comma = 1;
        j++;
        while (j < p->n && is_digit(p->s[j])) { b = b * 10 + (p->s[j++] - '0'); has_hi = 1; if (b > 100000) return -1; }
    }
    if (j >= p->n || p->s[j] != '}') return 0;
    *lo = has_lo ? (int32_t)a : 0;
    *hi = comma ? (has_hi ? (int32_t)b : REPEAT_INF) : (int32_t)a;
    if (*hi != REPEAT_INF && *hi < *lo) return -1;
    p->i = j + 1;
    return 1;
}

static int32_t rx_atom(rx_parser *p) {
    uint32_t c = p->s[p->i++];
    if (c == '(') {
        if (p->i < p->n && p->s[p->i] == '?') {
            if (p->i + 1 < p->n && p->s[p->i + 1] == ':') p->i += 2;
            else return -1;      /* named groups (names must be unique), flags, lookaround */
        }
        if (++p->depth > 400) return -1;
        int32_t inner = rx_alt(p);
        p->depth--;
        if (inner < 0 || p->i >= p->n || p->s[p->i] != ')') return -1;
        p->i++;
        return inner;
    }
    int64_t from = p->n_ranges;
    if (c == '[') return rx_class(p);
    if (c == '.') {
        if (rx_range_add(p, '\n', '\n') || rx_normalize(p, from, 1) < 0) return -1;
        return rx_set_from(p, from);
    }
    if (c == '\\') {
        uint32_t cp;
        int64_t cat = 0;
        int r = rx_escape(p, &cp, 0, &cat);
        if (r == 2) return rx_set_from(p, cat);
        if (r != 1) return -1;
        c = cp;
    } else if (c == '^' || c == '$' || c == ')' || c == '|' || c == '*' || c == '+' ||
               c == '?') {
        return -1;
    } else if (c == '{') {              /* a literal "{" unless it reads as a repeat */
        int32_t lo, hi;
        int64_t save = p->i;
        int r = rx_braces(p, &lo, &hi);
        if (r != 0) return -1;                /* "nothing to repeat" */
        p->i = save;
    }
    if (rx_range_add(p, c, c)) return -1;
    return rx_set_from(p, from);
}

/* A CAT or ALT node of the n children kids[0..n) (the child itself when n == 1). */
static int32_t rx_list_node(rx_parser *p, int kind, const int32_t *kids, int64_t n) {
    if (n == 1) return kids[0];
    int32_t id = rx_node_new(p, kind);
    if (id < 0) return -1;
    if (rx_grow((void **)&p->kids, &p->cap_kids, p->n_kids + n, sizeof(int32_t))) {
        p->err = RX_NOMEM;
        return -1;
    }
    p->nodes[id].a = (int32_t)p->n_kids;
    memcpy(p->kids + p->n_kids, kids, (size_t)n * sizeof(int32_t));
    p->n_kids += n;
    p->nodes[id].b = (int32_t)p->n_kids;
    return id;
}

static int32_t rx_cat(rx_parser *p) {
    /* children go to a scratch list first: nested parses append to kids[] too */
    int32_t *mine = NULL;
    int64_t n_mine = 0, cap_mine = 0;
    while (p->i < p->n && p->s[p->i] != '|' && p->s[p->i] != ')') {
        int64_t from = p->i;
        int32_t a = rx_atom(p);
        if (a < 0) { free(mine); return -1; }
        /* quantifiers */
        while (p->i < p->n) {
            uint32_t q = p->s[p->i];
            int32_t lo, hi;
            if (q == '*') { lo = 0; hi = REPEAT_INF; p->i++; }
            else if (q == '+') { lo = 1; hi = REPEAT_INF; p->i++; }
            else if (q == '?') { lo = 0; hi = 1; p->i++; }
            else if (q == '{') {
                p->i++;
                int r = rx_braces(p, &lo, &hi);
                if (r < 0) { free(mine); return -1; }
                if (r == 0) { p->i--; break; }
            } else break;
            if (p->i < p->n && p->s[p->i] == '?') p->i++;          /* lazy: same language */
            else if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '*' ||
                                     p->s[p->i] == '{')) {
                /* possessive or a repeated repeat: the Python path words it */
                if (p->s[p->i] != '{') { free(mine); return -1; }
                int32_t l2, h2;
                int64_t save = p->i;
                p->i++;
                int r = rx_braces(p, &l2, &h2);
                p->i = save;
                if (r != 0) { free(mine); return -1; }
            }
            int32_t rep = rx_node_new(p, N_REP);
            if (rep < 0) { free(mine); return -1; }
            p->nodes[rep].a = a;
            p->nodes[rep].lo = lo;
            p->nodes[rep].hi = hi;
            a = rep;
            break;
        }
        if (rx_grow((void **)&mine, &cap_mine, n_mine + 1, sizeof(int32_t))) { free(mine); p->err = RX_NOMEM; return -1; }
        p->nodes[a].from = from;
        p->nodes[a].to = p->i;
        mine[n_mine++] = a;
    }
    int32_t id = n_mine == 0 ? rx_node_new(p, N_EMPTY) : rx_list_node(p, N_CAT, mine, n_mine);
    free(mine);
    return id;
}

static int32_t rx_alt(rx_parser *p) {
    int32_t *mine = NULL;
    int64_t n_mine = 0, cap_mine = 0;
    for (;;) {
        int32_t a = rx_cat(p);
        if (a < 0) { free(mine); return -1; }
        if (rx_grow((void **)&mine, &cap_mine, n_mine + 1, sizeof(int32_t))) { free(mine); p->err = RX_NOMEM; return -1; }
        mine[n_mine++] = a;
        if (p->i < p->n && p->s[p->i] == '|') { p->i++; continue; }
        break;
    }
    int32_t id = rx_list_node(p, N_ALT, mine, n_mine);
    free(mine);
    return id;
}

#endif
