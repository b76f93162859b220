/* The Thompson construction of _native.c: a parsed regex (_native_regex.h) wired into an NFA
 * over UTF-8 bytes, fragment by fragment between given states.
 *
 * Fragments that read the same text into the same state are built once. Structural regexes
 * write a value twice where both copies lead on alike (an optional property's chain
 * ``X(, P)?|P``: P first or after a comma, then the same rest), and nested objects repeat that
 * at every level, so a plain construction gives the subset construction 2^depth copies that only
 * minimisation merges again. A CAT's tail from its k-th child (k >= 1: its entry is a state the
 * CAT made, with no way out but that tail) is recorded under (its text, exit state); a tail met
 * again with the same text and exit is an epsilon move to the recorded entry. The text decides
 * the parse (no flags reach this front end), and a fragment's only way out is its exit, so the
 * language is unchanged; tests compare the minimal DFAs with the Python path's.
 */
#ifndef CDLM_NATIVE_THOMPSON_H
#define CDLM_NATIVE_THOMPSON_H

typedef struct {
    uint64_t hash;
    int64_t from, to;            /* the tail's text */
    int32_t exit, entry;
} share_slot;

typedef struct {
    int64_t n_states, max_states;
    vec32 eps_from, eps_to;
    vec32 e_from, e_lo, e_hi, e_to;
    int err;
    uint64_t *prefix_hash, *power;   /* polynomial hashes of the pattern's prefixes */
    share_slot *slots;
    int64_t n_slots, n_used;
} rx_nfa;

/* Set up the tail memo for pattern s[0..n); 0 ok, -1 out of memory (sharing is then off). */
static int share_init(rx_nfa *a, const uint32_t *s, int64_t n) {
    a->prefix_hash = (uint64_t *)malloc((size_t)(n + 1) * sizeof(uint64_t));
    a->power = (uint64_t *)malloc((size_t)(n + 1) * sizeof(uint64_t));
    if (!a->prefix_hash || !a->power) return -1;
    a->prefix_hash[0] = 0;
    a->power[0] = 1;
    for (int64_t i = 0; i < n; i++) {
        a->prefix_hash[i + 1] = a->prefix_hash[i] * 0x100000001B3ULL + s[i] + 1;
        a->power[i + 1] = a->power[i] * 0x100000001B3ULL;
    }
    return 0;
}

static void share_free(rx_nfa *a) {
    free(a->prefix_hash); free(a->power); free(a->slots);
}

static uint64_t share_hash(const rx_nfa *a, int64_t from, int64_t to, int32_t exit) {
    uint64_t h = a->prefix_hash[to] - a->prefix_hash[from] * a->power[to - from];
    return (h ^ ((uint64_t)(uint32_t)exit * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL;
}

/* The slot of (text s[from..to), exit): its entry, or an empty slot to fill (entry -1). */
static share_slot *share_find(rx_nfa *a, const uint32_t *s, int64_t from, int64_t to,
                              int32_t exit) {
    if (!a->power) return NULL;
    if (2 * (a->n_used + 1) > a->n_slots) {
        int64_t n = a->n_slots ? 2 * a->n_slots : 1024;
        share_slot *fresh = (share_slot *)malloc((size_t)n * sizeof(share_slot));
        if (!fresh) return NULL;
        for (int64_t i = 0; i < n; i++) fresh[i].entry = -1;
        for (int64_t i = 0; i < a->n_slots; i++) {
            if (a->slots[i].entry < 0) continue;
            int64_t j = (int64_t)(a->slots[i].hash & (uint64_t)(n - 1));
            while (fresh[j].entry >= 0) j = (j + 1) & (n - 1);
            fresh[j] = a->slots[i];
        }
        free(a->slots);
        a->slots = fresh;
        a->n_slots = n;
    }
    uint64_t h = share_hash(a, from, to, exit);
    int64_t j = (int64_t)(h & (uint64_t)(a->n_slots - 1));
    while (a->slots[j].entry >= 0) {
        share_slot *e = &a->slots[j];
        if (e->hash == h && e->exit == exit && e->to - e->from == to - from &&
            !memcmp(s + e->from, s + from, (size_t)(to - from) * sizeof(uint32_t)))
            return e;
        j = (j + 1) & (a->n_slots - 1);
    }
    a->slots[j].hash = h;
    a->slots[j].from = from;
    a->slots[j].to = to;
    a->slots[j].exit = exit;
    return &a->slots[j];                 /* entry -1: the caller fills it */
}

static int32_t nfa_state(rx_nfa *a) {
    if (a->n_states >= a->max_states) { a->err = RX_TOO_MANY; return -1; }
    return (int32_t)a->n_states++;
}

static int nfa_eps(rx_nfa *a, int32_t s, int32_t t) {
    if (vec_push(&a->eps_from, s) || vec_push(&a->eps_to, t)) { a->err = RX_NOMEM; return -1; }
    return 0;
}

static int nfa_edge(rx_nfa *a, int32_t s, int32_t lo, int32_t hi, int32_t t) {
    if (vec_push(&a->e_from, s) || vec_push(&a->e_lo, lo) || vec_push(&a->e_hi, hi) ||
        vec_push(&a->e_to, t)) { a->err = RX_NOMEM; return -1; }
    return 0;
}

/* One UTF-8 byte-range sequence for [lo, hi] (same first bytes' lengths), wired s -> t. */
static int utf8_seq(rx_nfa *a, uint32_t lo, uint32_t hi, int32_t s, int32_t t) {
    uint8_t bl[4], bh[4];
    int n;
    if (lo <= 0x7F) { bl[0] = (uint8_t)lo; bh[0] = (uint8_t)hi; n = 1; }
    else if (lo <= 0x7FF) {
        bl[0] = (uint8_t)(0xC0 | (lo >> 6)); bl[1] = (uint8_t)(0x80 | (lo & 0x3F));
        bh[0] = (uint8_t)(0xC0 | (hi >> 6)); bh[1] = (uint8_t)(0x80 | (hi & 0x3F)); n = 2;
    } else if (lo <= 0xFFFF) {
        bl[0] = (uint8_t)(0xE0 | (lo >> 12)); bl[1] = (uint8_t)(0x80 | ((lo >> 6) & 0x3F));
        bl[2] = (uint8_t)(0x80 | (lo & 0x3F));
        bh[0] = (uint8_t)(0xE0 | (hi >> 12)); bh[1] = (uint8_t)(0x80 | ((hi >> 6) & 0x3F));
        bh[2] = (uint8_t)(0x80 | (hi & 0x3F)); n = 3;
    } else {
        bl[0] = (uint8_t)(0xF0 | (lo >> 18)); bl[1] = (uint8_t)(0x80 | ((lo >> 12) & 0x3F));
        bl[2] = (uint8_t)(0x80 | ((lo >> 6) & 0x3F)); bl[3] = (uint8_t)(0x80 | (lo & 0x3F));
        bh[0] = (uint8_t)(0xF0 | (hi >> 18)); bh[1] = (uint8_t)(0x80 | ((hi >> 12) & 0x3F));
        bh[2] = (uint8_t)(0x80 | ((hi >> 6) & 0x3F)); bh[3] = (uint8_t)(0x80 | (hi & 0x3F)); n = 4;
    }
    int32_t cur = s;
    for (int k = 0; k < n; k++) {
        int32_t nxt = k == n - 1 ? t : nfa_state(a);
        if (nxt < 0 || nfa_edge(a, cur, bl[k], bh[k], nxt)) return -1;
        cur = nxt;
    }
    return 0;
}

/* nfa.py's _utf8_sequences, wiring each sequence s -> t. */
static int utf8_ranges(rx_nfa *a, uint32_t lo, uint32_t hi, int32_t s, int32_t t) {
    if (lo > hi) return 0;
    if (lo <= 0xDFFF && hi >= 0xD800) {
        if (lo < 0xD800 && utf8_ranges(a, lo, 0xD7FF, s, t)) return -1;
        return hi > 0xDFFF ? utf8_ranges(a, 0xE000, hi, s, t) : 0;
    }
    static const uint32_t mx[3] = {0x7F, 0x7FF, 0xFFFF};
    for (int k = 0; k < 3; k++)
        if (lo <= mx[k] && mx[k] < hi)
            return utf8_ranges(a, lo, mx[k], s, t) || utf8_ranges(a, mx[k] + 1, hi, s, t) ? -1 : 0;
    if (hi <= 0x7F) return utf8_seq(a, lo, hi, s, t);
    for (int i = 1; i < 4; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if ((lo & m) != 0)
                return utf8_ranges(a, lo, lo | m, s, t) || utf8_ranges(a, (lo | m) + 1, hi, s, t) ? -1 : 0;
            if ((hi & m) != m)
                return utf8_ranges(a, lo, (hi & ~m) - 1, s, t) || utf8_ranges(a, hi & ~m, hi, s, t) ? -1 : 0;
        }
    }
    return utf8_seq(a, lo, hi, s, t);
}

static int nfa_build(rx_parser *p, rx_nfa *a, int32_t node, int32_t s, int32_t t, int depth) {
    if (depth > 2000) { a->err = RX_UNSUPPORTED; return -1; }
    rx_node *nd = &p->nodes[node];
    switch (nd->kind) {
    case N_EMPTY: return nfa_eps(a, s, t);
    case N_SET:
        for (int32_t r = nd->a; r < nd->b; r += 2)
            if (utf8_ranges(a, p->ranges[r], p->ranges[r + 1], s, t)) return -1;
        return 0;
    case N_CAT: {
        int32_t cur = s;
        int64_t to = p->nodes[p->kids[nd->b - 1]].to;
        for (int32_t k = nd->a; k < nd->b; k++) {
            share_slot *slot = share_find(a, p->s, p->nodes[p->kids[k]].from, to, t);
            if (slot && slot->entry >= 0) return nfa_eps(a, cur, slot->entry);  /* built */
            if (slot && k > nd->a) {             /* cur: made here, no way out but this tail */
                slot->entry = cur;
                a->n_used++;
            }
            int32_t nxt = k == nd->b - 1 ? t : nfa_state(a);
            if (nxt < 0 || nfa_build(p, a, p->kids[k], cur, nxt, depth + 1)) return -1;
            cur = nxt;
        }
        return 0;
    }
    case N_ALT:
        for (int32_t k = nd->a; k < nd->b; k++) {
            int32_t e = nfa_state(a);
            if (e < 0 || nfa_eps(a, s, e) || nfa_build(p, a, p->kids[k], e, t, depth + 1)) return -1;
        }
        return 0;
    case N_REP: {
        int32_t child = nd->a, lo = nd->lo, hi = nd->hi, cur = s;
        for (int32_t k = 0; k < lo; k++) {
            int32_t nxt = nfa_state(a);
            if (nxt < 0 || nfa_build(p, a, child, cur, nxt, depth + 1)) return -1;
            cur = nxt;
        }
        if (hi == REPEAT_INF) {
            int32_t loop = nfa_state(a);       /* a fresh state: cur may have other ways out */
            if (loop < 0 || nfa_eps(a, cur, loop) || nfa_build(p, a, child, loop, loop, depth + 1) ||
                nfa_eps(a, loop, t)) return -1;
            return 0;
        }
        if (nfa_eps(a, cur, t)) return -1;
        for (int32_t k = 0; k < hi - lo; k++) {
            int32_t nxt = k == hi - lo - 1 ? t : nfa_state(a);
            if (nxt < 0 || nfa_build(p, a, child, cur, nxt, depth + 1)) return -1;
            if (nxt != t && nfa_eps(a, nxt, t)) return -1;
            cur = nxt;
        }
        return 0;
    }
    }
    return -1;
}

#endif
