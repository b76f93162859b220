/* The compile stage's hot loops in C (issue 25), called through ctypes from automata/native.py.
 *
 * Plain C on flat int32 arrays, no Python objects: the loader finds this file's shared library
 * and falls back to the pure-Python reference when it was not built (no compiler at install).
 * Tests check both paths give the same automata. The regex front end is _native_regex.h, the
 * Thompson construction _native_thompson.h, the token lift _native_lift.h, minimisation and
 * trim's graph walks _native_graph.h, and the decode stage's host loops _native_sweeps.h.
 *
 * subset_construction: a Thompson NFA over bytes (epsilon lists and byte-range edges, CSR) to a
 * DFA over byte classes. A subset is a sorted list of NFA states kept in one pool and found
 * again through an open-addressing hash table; its row is the union of its members' edges per
 * class, each target set closed under epsilon moves with a stamp array (no per-set allocation).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int32_t *data;
    int64_t len, cap;
} vec32;

static int vec_push(vec32 *v, int32_t x) {
    if (v->len == v->cap) {
        int64_t cap = v->cap ? 2 * v->cap : 1024;
        int32_t *d = (int32_t *)realloc(v->data, (size_t)cap * sizeof(int32_t));
        if (!d) return -1;
        v->data = d;
        v->cap = cap;
    }
    v->data[v->len++] = x;
    return 0;
}

static int vec_reserve(vec32 *v, int64_t extra) {
    if (v->len + extra <= v->cap) return 0;
    int64_t cap = v->cap ? v->cap : 1024;
    while (cap < v->len + extra) cap *= 2;
    int32_t *d = (int32_t *)realloc(v->data, (size_t)cap * sizeof(int32_t));
    if (!d) return -1;
    v->data = d;
    v->cap = cap;
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static uint64_t hash_set(const int32_t *s, int64_t n) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)n;
    for (int64_t i = 0; i < n; i++) {
        h ^= (uint64_t)(uint32_t)s[i];
        h *= 1099511628211ULL;
        h ^= h >> 29;
    }
    return h;
}

/* The result of a subset construction, kept until copied out and freed. */
typedef struct {
    int64_t n_states, n_classes;
    vec32 rows;        /* n_states * n_classes next states, -1 dead */
    vec32 accepting;   /* n_states flags */
    vec32 bounds;      /* byte class cut points (regex_dfa only) */
    int status;        /* 0 ok, 1 too many states, 2 past the deadline, 3 out of memory */
} sc_result;

typedef struct {
    vec32 pool;          /* members of every subset, back to back */
    vec32 off, len;      /* per subset: where its members start, how many */
    int64_t *slots;      /* hash table: subset id + 1, 0 empty */
    uint64_t *hashes;
    int64_t n_slots;
} set_table;

static int table_grow(set_table *t) {
    int64_t n = t->n_slots * 2;
    int64_t *slots = (int64_t *)calloc((size_t)n, sizeof(int64_t));
    uint64_t *hashes = (uint64_t *)calloc((size_t)n, sizeof(uint64_t));
    if (!slots || !hashes) { free(slots); free(hashes); return -1; }
    for (int64_t i = 0; i < t->n_slots; i++) {
        if (!t->slots[i]) continue;
        int64_t j = (int64_t)(t->hashes[i] & (uint64_t)(n - 1));
        while (slots[j]) j = (j + 1) & (n - 1);
        slots[j] = t->slots[i];
        hashes[j] = t->hashes[i];
    }
    free(t->slots); free(t->hashes);
    t->slots = slots; t->hashes = hashes; t->n_slots = n;
    return 0;
}

/* The id of subset s[0..n) (sorted), adding it when new (*added = 1); -1 out of memory. */
static int64_t table_find_or_add(set_table *t, const int32_t *s, int64_t n, int *added) {
    uint64_t h = hash_set(s, n);
    int64_t mask = t->n_slots - 1, j = (int64_t)(h & (uint64_t)mask);
    *added = 0;
    while (t->slots[j]) {
        if (t->hashes[j] == h) {
            int64_t id = t->slots[j] - 1;
            if (t->len.data[id] == n &&
                !memcmp(t->pool.data + t->off.data[id], s, (size_t)n * sizeof(int32_t)))
                return id;
        }
        j = (j + 1) & mask;
    }
    int64_t id = t->off.len;
    if (t->pool.len + n > INT32_MAX) return -1;
    if (vec_push(&t->off, (int32_t)t->pool.len) || vec_push(&t->len, (int32_t)n) ||
        vec_reserve(&t->pool, n))
        return -1;
    memcpy(t->pool.data + t->pool.len, s, (size_t)n * sizeof(int32_t));
    t->pool.len += n;
    t->slots[j] = id + 1;
    t->hashes[j] = h;
    *added = 1;
    if (2 * (id + 1) > t->n_slots && table_grow(t)) return -1;
    return id;
}

/* Epsilon closure of seeds[0..n) into out (sorted); stamp[] marks this round's members. */
static int closure(const int32_t *eps_ptr, const int32_t *eps_to, const int32_t *seeds,
                   int64_t n, int32_t *stamp, int32_t round, vec32 *out, vec32 *stack) {
    out->len = 0;
    stack->len = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t q = seeds[i];
        if (stamp[q] == round) continue;
        stamp[q] = round;
        if (vec_push(out, q) || vec_push(stack, q)) return -1;
    }
    while (stack->len) {
        int32_t q = stack->data[--stack->len];
        for (int32_t e = eps_ptr[q]; e < eps_ptr[q + 1]; e++) {
            int32_t r = eps_to[e];
            if (stamp[r] == round) continue;
            stamp[r] = round;
            if (vec_push(out, r) || vec_push(stack, r)) return -1;
        }
    }
    qsort(out->data, (size_t)out->len, sizeof(int32_t), cmp_i32);
    return 0;
}

static void subset_core(sc_result *res, int32_t n_nfa, const int32_t *eps_ptr,
                        const int32_t *eps_to, const int32_t *edge_ptr, const int32_t *edge_clo,
                        const int32_t *edge_chi, const int32_t *edge_to, int32_t n_classes,
                        int32_t start, int32_t final, int64_t max_states, double deadline) {
    res->n_classes = n_classes;
    set_table t = {0};
    t.n_slots = 1024;
    t.slots = (int64_t *)calloc((size_t)t.n_slots, sizeof(int64_t));
    t.hashes = (uint64_t *)calloc((size_t)t.n_slots, sizeof(uint64_t));
    int32_t *stamp = (int32_t *)malloc((size_t)n_nfa * sizeof(int32_t));
    int32_t *cnt = (int32_t *)calloc((size_t)n_classes + 1, sizeof(int32_t));
    int32_t *fill = (int32_t *)calloc((size_t)n_classes + 1, sizeof(int32_t));
    vec32 bucket = {0}, set = {0}, stack = {0}, seed = {0};
    int32_t round = 0;
    int added;
    if (!t.slots || !t.hashes || !stamp || !cnt || !fill) { res->status = 3; goto done; }
    for (int32_t i = 0; i < n_nfa; i++) stamp[i] = -1;

    if (vec_push(&seed, start) ||
        closure(eps_ptr, eps_to, seed.data, 1, stamp, round++, &set, &stack) ||
        table_find_or_add(&t, set.data, set.len, &added) < 0) { res->status = 3; goto done; }

    for (int64_t i = 0; i < t.off.len; i++) {
        if ((i & 255) == 0 && now_s() > deadline) { res->status = 2; goto done; }
        int64_t base = res->rows.len;
        if (vec_reserve(&res->rows, n_classes)) { res->status = 3; goto done; }
        for (int32_t k = 0; k < n_classes; k++) res->rows.data[base + k] = -1;
        res->rows.len += n_classes;
        /* targets per class: count, then place (bucket holds them class by class) */
        int32_t off = t.off.data[i], n = t.len.data[i];
        memset(cnt, 0, (size_t)(n_classes + 1) * sizeof(int32_t));
        int acc = 0;
        for (int32_t m = 0; m < n; m++) {
            int32_t q = t.pool.data[off + m];
            if (q == final) acc = 1;
            for (int32_t e = edge_ptr[q]; e < edge_ptr[q + 1]; e++)
                for (int32_t k = edge_clo[e]; k <= edge_chi[e]; k++) cnt[k + 1]++;
        }
        if (vec_push(&res->accepting, acc)) { res->status = 3; goto done; }
        for (int32_t k = 0; k < n_classes; k++) cnt[k + 1] += cnt[k];
        bucket.len = 0;
        if (vec_reserve(&bucket, cnt[n_classes])) { res->status = 3; goto done; }
        memcpy(fill, cnt, (size_t)(n_classes + 1) * sizeof(int32_t));
        for (int32_t m = 0; m < n; m++) {
            int32_t q = t.pool.data[t.off.data[i] + m];
            for (int32_t e = edge_ptr[q]; e < edge_ptr[q + 1]; e++)
                for (int32_t k = edge_clo[e]; k <= edge_chi[e]; k++)
                    bucket.data[fill[k]++] = edge_to[e];
        }
        for (int32_t k = 0; k < n_classes; k++) {
            if (cnt[k + 1] == cnt[k]) continue;
            if (closure(eps_ptr, eps_to, bucket.data + cnt[k], cnt[k + 1] - cnt[k], stamp,
                        round++, &set, &stack)) { res->status = 3; goto done; }
            int64_t j = table_find_or_add(&t, set.data, set.len, &added);
            if (j < 0) { res->status = 3; goto done; }
            if (added && t.off.len > max_states) { res->status = 1; goto done; }
            res->rows.data[base + k] = (int32_t)j;
        }
    }
    res->n_states = t.off.len;
done:
    free(t.pool.data); free(t.off.data); free(t.len.data); free(t.slots); free(t.hashes);
    free(stamp); free(cnt); free(fill); free(bucket.data); free(set.data); free(stack.data);
    free(seed.data);
}

void *cdlm_subset_construction(int32_t n_nfa, const int32_t *eps_ptr, const int32_t *eps_to,
                               const int32_t *edge_ptr, const int32_t *edge_clo,
                               const int32_t *edge_chi, const int32_t *edge_to,
                               int32_t n_classes, int32_t start, int32_t final,
                               int64_t max_states, double deadline) {
    sc_result *res = (sc_result *)calloc(1, sizeof(sc_result));
    if (!res) return NULL;
    subset_core(res, n_nfa, eps_ptr, eps_to, edge_ptr, edge_clo, edge_chi, edge_to, n_classes,
                start, final, max_states, deadline);
    return res;
}

#include "_native_regex.h"
#include "_native_thompson.h"
#include "_native_lift.h"

/* CSR rows (ptr[n + 1], and the order that sorts `from`) of an edge list. */
static int32_t *csr(const vec32 *from, int64_t n, int32_t **order_out) {
    int32_t *ptr = (int32_t *)calloc((size_t)n + 1, sizeof(int32_t));
    int32_t *order = (int32_t *)malloc((size_t)(from->len ? from->len : 1) * sizeof(int32_t));
    if (!ptr || !order) { free(ptr); free(order); return NULL; }
    for (int64_t i = 0; i < from->len; i++) ptr[from->data[i] + 1]++;
    for (int64_t q = 0; q < n; q++) ptr[q + 1] += ptr[q];
    int32_t *fill = (int32_t *)malloc(((size_t)n + 1) * sizeof(int32_t));
    if (!fill) { free(ptr); free(order); return NULL; }
    memcpy(fill, ptr, ((size_t)n + 1) * sizeof(int32_t));
    for (int64_t i = 0; i < from->len; i++) order[fill[from->data[i]]++] = (int32_t)i;
    free(fill);
    *order_out = order;
    return ptr;
}

/* Regex (code points) to a DFA over byte classes: status 4 when the regex is not one the C
 * front end reads (the caller takes the Python path). res->bounds: the class cut points. */
void *cdlm_regex_dfa(const uint32_t *re, int64_t n, int64_t max_states, double deadline) {
    sc_result *res = (sc_result *)calloc(1, sizeof(sc_result));
    if (!res) return NULL;
    rx_parser p = {0};
    p.s = re;
    p.n = n;
    rx_nfa a = {0};
    a.max_states = max_states;
    int32_t *eps_ptr = NULL, *eps_ord = NULL, *eps_to = NULL, *e_ptr = NULL, *e_ord = NULL;
    int32_t *clo = NULL, *chi = NULL, *to = NULL;
    int32_t root = rx_alt(&p);
    if (p.err == RX_NOMEM) { res->status = 3; goto out; }
    if (root < 0 || p.i != p.n) { res->status = 4; goto out; }
    share_init(&a, re, n);                         /* no memory for it: no sharing */
    int32_t s0 = nfa_state(&a), t0 = nfa_state(&a);
    if (s0 < 0 || t0 < 0 || nfa_build(&p, &a, root, s0, t0, 0)) {
        res->status = a.err == RX_NOMEM ? 3 : 4;     /* NFA cap: the Python path shares more */
        goto out;
    }
    /* byte classes: cut points of every edge */
    uint8_t cut[257] = {0};
    cut[0] = cut[256] = 1;
    for (int64_t i = 0; i < a.e_lo.len; i++) {
        cut[a.e_lo.data[i]] = 1;
        cut[a.e_hi.data[i] + 1] = 1;
    }
    int32_t byte_class[256], k_n = 0;
    for (int b = 0; b < 256; b++) {
        if (cut[b] && b) k_n++;
        byte_class[b] = k_n;
        if (cut[b]) { if (vec_push(&res->bounds, b)) { res->status = 3; goto out; } }
    }
    k_n++;
    if (vec_push(&res->bounds, 256)) { res->status = 3; goto out; }
    eps_ptr = csr(&a.eps_from, a.n_states, &eps_ord);
    e_ptr = csr(&a.e_from, a.n_states, &e_ord);
    int64_t m = a.e_lo.len;
    eps_to = (int32_t *)malloc((size_t)(a.eps_to.len ? a.eps_to.len : 1) * sizeof(int32_t));
    clo = (int32_t *)malloc((size_t)(m ? m : 1) * sizeof(int32_t));
    chi = (int32_t *)malloc((size_t)(m ? m : 1) * sizeof(int32_t));
    to = (int32_t *)malloc((size_t)(m ? m : 1) * sizeof(int32_t));
    if (!eps_ptr || !e_ptr || !eps_to || !clo || !chi || !to) { res->status = 3; goto out; }
    for (int64_t i = 0; i < a.eps_to.len; i++) eps_to[i] = a.eps_to.data[eps_ord[i]];
    for (int64_t i = 0; i < m; i++) {
        int32_t e = e_ord[i];
        clo[i] = byte_class[a.e_lo.data[e]];
        chi[i] = byte_class[a.e_hi.data[e]];
        to[i] = a.e_to.data[e];
    }
    subset_core(res, (int32_t)a.n_states, eps_ptr, eps_to, e_ptr, clo, chi, to, k_n, s0, t0,
                max_states, deadline);
out:
    free(p.nodes); free(p.kids); free(p.ranges);
    free(a.eps_from.data); free(a.eps_to.data); free(a.e_from.data); free(a.e_lo.data);
    free(a.e_hi.data); free(a.e_to.data);
    share_free(&a);
    free(eps_ptr); free(eps_ord); free(eps_to); free(e_ptr); free(e_ord); free(clo); free(chi);
    free(to);
    return res;
}

int64_t cdlm_result_classes(void *h) { return ((sc_result *)h)->n_classes; }
int64_t cdlm_result_nbounds(void *h) { return ((sc_result *)h)->bounds.len; }
void cdlm_result_bounds(void *h, int32_t *out) {
    sc_result *r = (sc_result *)h;
    memcpy(out, r->bounds.data, (size_t)r->bounds.len * sizeof(int32_t));
}

int32_t cdlm_result_status(void *h) { return ((sc_result *)h)->status; }
int64_t cdlm_result_states(void *h) { return ((sc_result *)h)->n_states; }

void cdlm_result_copy(void *h, int32_t *rows, uint8_t *accepting) {
    sc_result *r = (sc_result *)h;
    memcpy(rows, r->rows.data, (size_t)(r->n_states * r->n_classes) * sizeof(int32_t));
    for (int64_t i = 0; i < r->n_states; i++) accepting[i] = (uint8_t)r->accepting.data[i];
}

void cdlm_result_free(void *h) {
    sc_result *r = (sc_result *)h;
    if (!r) return;
    free(r->rows.data);
    free(r->accepting.data);
    free(r->bounds.data);
    free(r);
}

#include "_native_graph.h"
#include "_native_sweeps.h"

/* A real (empty) extension module, so that setuptools builds and installs this file as one;
 * its functions are reached through ctypes. */
static struct PyModuleDef native_module = {PyModuleDef_HEAD_INIT, "_native",
                                           "C loops of the compile stage (see native.py)", -1,
                                           NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&native_module); }
