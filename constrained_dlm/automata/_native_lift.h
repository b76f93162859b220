/* The token lift of _native.c: every token of the vocabulary walked through a byte DFA from
 * every start state at once (automata/lift.py's _lift, same contract).
 *
 * A depth-first walk of the vocabulary's byte trie. Each trie node carries a "prefix": the
 * vector of states (and counter increments) its bytes lead to from each start. Prefixes with
 * equal vectors are one (a hash table over the vectors), and the step from a prefix by a byte
 * class is computed once (a memo), so the work is the trie's nodes plus the distinct steps
 * times the starts. Prefixes dead from every start drop their subtree.
 */
#ifndef CDLM_NATIVE_LIFT_H
#define CDLM_NATIVE_LIFT_H

typedef struct {
    int64_t s_n;                 /* starts: the vector length */
    int with_acc;
    vec32 pool;                  /* per prefix: s_n states (+ s_n counts), back to back */
    int64_t n_pre;
    int64_t *slots; uint64_t *hashes; int64_t n_slots;
    int32_t *memo; int64_t memo_cap;   /* per prefix x class: child prefix + 2 (0 unknown, 1 dead) */
    int64_t k_n;
} lift_state;

static int64_t lift_width(const lift_state *L) { return L->with_acc ? 2 * L->s_n : L->s_n; }

static int lift_grow_table(lift_state *L) {
    int64_t n = L->n_slots ? 2 * L->n_slots : 1024;
    int64_t *slots = (int64_t *)calloc((size_t)n, sizeof(int64_t));
    uint64_t *hashes = (uint64_t *)calloc((size_t)n, sizeof(uint64_t));
    if (!slots || !hashes) { free(slots); free(hashes); return -1; }
    for (int64_t i = 0; i < L->n_slots; i++) {
        if (!L->slots[i]) continue;
        int64_t j = (int64_t)(L->hashes[i] & (uint64_t)(n - 1));
        while (slots[j]) j = (j + 1) & (n - 1);
        slots[j] = L->slots[i];
        hashes[j] = L->hashes[i];
    }
    free(L->slots); free(L->hashes);
    L->slots = slots; L->hashes = hashes; L->n_slots = n;
    return 0;
}

/* The prefix id of vector v (width lift_width), added when new; -1 out of memory. */
static int64_t lift_intern(lift_state *L, const int32_t *v) {
    int64_t w = lift_width(L);
    uint64_t h = hash_set(v, w);
    if (2 * (L->n_pre + 1) > L->n_slots && lift_grow_table(L)) return -1;
    int64_t mask = L->n_slots - 1, j = (int64_t)(h & (uint64_t)mask);
    while (L->slots[j]) {
        int64_t id = L->slots[j] - 1;
        if (L->hashes[j] == h && !memcmp(L->pool.data + id * w, v, (size_t)w * sizeof(int32_t)))
            return id;
        j = (j + 1) & mask;
    }
    int64_t id = L->n_pre;
    if (vec_reserve(&L->pool, w)) return -1;
    memcpy(L->pool.data + L->pool.len, v, (size_t)w * sizeof(int32_t));
    L->pool.len += w;
    if (L->memo_cap < (id + 1) * L->k_n) {
        int64_t cap = L->memo_cap ? 2 * L->memo_cap : 1024 * L->k_n;
        while (cap < (id + 1) * L->k_n) cap *= 2;
        int32_t *m = (int32_t *)realloc(L->memo, (size_t)cap * sizeof(int32_t));
        if (!m) return -1;
        memset(m + L->memo_cap, 0, (size_t)(cap - L->memo_cap) * sizeof(int32_t));
        L->memo = m;
        L->memo_cap = cap;
    }
    L->slots[j] = id + 1;
    L->hashes[j] = h;
    L->n_pre++;
    return id;
}

typedef struct {
    int64_t n_cols, n_pre, status;   /* status: 0 ok, 1 work cap (level in work_level), 3 memory, 2 deadline */
    int64_t work_level, work;
    int32_t dead;                    /* the absorbing state's number (q_n) */
    vec32 col_of_pre;                /* prefix -> column + 1 (0: none) */
    vec32 col_pre;                   /* column -> prefix */
    lift_state L;
} lift_result;

/* Trie levels flattened: level j's nodes are [node_off[j], node_off[j+1]); child_start of
 * level j has one entry per node of level j - 1 plus one, at cs_off[j]; end_start likewise
 * per node of level j at es_off[j]; end tokens at et_off[j]. Level -1 is the root (1 node). */
void *cdlm_lift(int64_t q_n, const int32_t *ext, const int32_t *inc_ext, const int32_t *byte_cls,
                int64_t k_n, const int32_t *starts, int64_t s_n, int64_t depth,
                const int64_t *node_off, const int64_t *cs_off, const int64_t *es_off,
                const int64_t *et_off, const int32_t *byte, const int32_t *child_start,
                const int32_t *end_start, const int32_t *end_tok, int32_t *token_col,
                int64_t max_work, double deadline) {
    lift_result *R = (lift_result *)calloc(1, sizeof(lift_result));
    if (!R) return NULL;
    lift_state *L = &R->L;
    L->s_n = s_n;
    L->with_acc = inc_ext != NULL;
    L->k_n = k_n;
    int64_t w = lift_width(L);
    int32_t dead = (int32_t)q_n;
    R->dead = dead;
    int32_t *vec = (int32_t *)malloc((size_t)(w ? w : 1) * sizeof(int32_t));
    int64_t *work = (int64_t *)calloc((size_t)depth + 1, sizeof(int64_t));
    /* DFS stack: (level, node, prefix) */
    vec32 st_level = {0}, st_node = {0}, st_pre = {0};
    if (!vec || !work) { R->status = 3; goto out; }
    for (int64_t s = 0; s < s_n; s++) { vec[s] = starts[s]; if (L->with_acc) vec[s_n + s] = 0; }
    int64_t root = lift_intern(L, vec);
    if (root < 0) { R->status = 3; goto out; }
    if (vec_push(&st_level, -1) || vec_push(&st_node, 0) || vec_push(&st_pre, (int32_t)root)) {
        R->status = 3; goto out;
    }
    int64_t steps = 0;
    while (st_level.len) {
        st_level.len--; st_node.len--; st_pre.len--;
        int32_t lv = st_level.data[st_level.len], nd = st_node.data[st_node.len];
        int32_t p = st_pre.data[st_pre.len];
        int32_t j = lv + 1;                                  /* the children's level */
        if (j >= depth) continue;
        if ((++steps & 1023) == 0 && now_s() > deadline) { R->status = 2; goto out; }
        const int32_t *cs = child_start + cs_off[j];
        for (int32_t c = cs[nd]; c < cs[nd + 1]; c++) {
            int32_t b = byte[node_off[j] + c];
            int64_t k = byte_cls[b];
            int32_t got = L->memo[(int64_t)p * k_n + k];
            if (!got) {
                if (++work[j] * s_n > max_work) { R->status = 1; R->work_level = j; R->work = work[j]; goto out; }
                const int32_t *v = L->pool.data + (int64_t)p * w;
                int alive = 0;
                for (int64_t s = 0; s < s_n; s++) {
                    int32_t q = v[s];
                    int32_t r = ext[(int64_t)q * 257 + b];
                    vec[s] = r;
                    if (r != dead) alive = 1;
                    if (L->with_acc) vec[s_n + s] = v[s_n + s] + inc_ext[(int64_t)q * 257 + b];
                }
                if (alive) {
                    int64_t id = lift_intern(L, vec);
                    if (id < 0) { R->status = 3; goto out; }
                    got = (int32_t)id + 2;
                } else {
                    got = 1;
                }
                L->memo[(int64_t)p * k_n + k] = got;       /* memo may have moved: re-index */
            }
            if (got == 1) continue;
            int32_t cp = got - 2;
            const int32_t *es = end_start + es_off[j];
            for (int32_t e = es[c]; e < es[c + 1]; e++) {
                while (R->col_of_pre.len <= cp)
                    if (vec_push(&R->col_of_pre, 0)) { R->status = 3; goto out; }
                if (!R->col_of_pre.data[cp]) {
                    if (vec_push(&R->col_pre, cp)) { R->status = 3; goto out; }
                    R->col_of_pre.data[cp] = (int32_t)R->col_pre.len;
                }
                token_col[end_tok[et_off[j] + e]] = R->col_of_pre.data[cp] - 1;
            }
            if (vec_push(&st_level, j) || vec_push(&st_node, c) || vec_push(&st_pre, cp)) {
                R->status = 3; goto out;
            }
        }
    }
    R->n_cols = R->col_pre.len;
    R->n_pre = L->n_pre;
out:
    free(vec); free(work); free(st_level.data); free(st_node.data); free(st_pre.data);
    return R;
}

int64_t cdlm_lift_status(void *h) { return ((lift_result *)h)->status; }
int64_t cdlm_lift_cols(void *h) { return ((lift_result *)h)->n_cols; }
int64_t cdlm_lift_work(void *h, int64_t *level) {
    lift_result *R = (lift_result *)h;
    *level = R->work_level;
    return R->work;
}

/* (S, U) next states (-1 dead) and counts (0 where dead) of the emitted columns. */
void cdlm_lift_copy(void *h, int32_t *nxt, int32_t *cnt) {
    lift_result *R = (lift_result *)h;
    lift_state *L = &R->L;
    int64_t s_n = L->s_n, w = lift_width(L), u_n = R->n_cols;
    for (int64_t u = 0; u < u_n; u++) {
        const int32_t *v = L->pool.data + (int64_t)R->col_pre.data[u] * w;
        for (int64_t s = 0; s < s_n; s++) {
            int is_dead = v[s] == R->dead;
            nxt[s * u_n + u] = is_dead ? -1 : v[s];
            if (cnt) cnt[s * u_n + u] = is_dead ? 0 : v[s_n + s];
        }
    }
}

void cdlm_lift_free(void *h) {
    lift_result *R = (lift_result *)h;
    if (!R) return;
    free(R->col_of_pre.data); free(R->col_pre.data);
    free(R->L.pool.data); free(R->L.slots); free(R->L.hashes); free(R->L.memo);
    free(R);
}

#endif
