/* Partition refinement and graph walks of _native.c: Moore's and Hopcroft's minimisation of a
 * table over byte classes, and _trim's reach, co-reach and longest path (automaton.py keeps
 * the Python versions as the reference). */
#ifndef CDLM_NATIVE_GRAPH_H
#define CDLM_NATIVE_GRAPH_H

/* Moore partition refinement of a (q_n, k_n) table (-1 dead): block[q] in 0..n-1 for states
 * with the same future, numbered in order of first appearance by state index. Each round
 * labels every state by (its block, its successors' blocks) through a hash table whose keys
 * are representative states (signatures are recomputed, never stored). Returns the number of
 * blocks, -1 out of memory, -2 past the deadline. */
static uint64_t sig_hash(const int32_t *t, int64_t k_n, const int32_t *blk, int64_t q) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uint32_t)blk[q];
    const int32_t *row = t + q * k_n;
    for (int64_t k = 0; k < k_n; k++) {
        int32_t s = row[k];
        h ^= (uint64_t)(uint32_t)(s < 0 ? -1 : blk[s]);
        h *= 1099511628211ULL;
        h ^= h >> 31;
    }
    return h;
}

static int sig_equal(const int32_t *t, int64_t k_n, const int32_t *blk, int64_t a, int64_t b) {
    if (blk[a] != blk[b]) return 0;
    const int32_t *ra = t + a * k_n, *rb = t + b * k_n;
    for (int64_t k = 0; k < k_n; k++) {
        int32_t x = ra[k] < 0 ? -1 : blk[ra[k]], y = rb[k] < 0 ? -1 : blk[rb[k]];
        if (x != y) return 0;
    }
    return 1;
}

int64_t cdlm_moore(int64_t q_n, int64_t k_n, const int32_t *t, const uint8_t *accepting,
                   int32_t *block, double deadline) {
    if (q_n == 0) return 0;
    int64_t n_slots = 1;
    while (n_slots < 2 * q_n) n_slots <<= 1;
    int64_t *slots = (int64_t *)malloc((size_t)n_slots * sizeof(int64_t));
    uint64_t *hashes = (uint64_t *)malloc((size_t)n_slots * sizeof(uint64_t));
    int32_t *next = (int32_t *)malloc((size_t)q_n * sizeof(int32_t));
    if (!slots || !hashes || !next) { free(slots); free(hashes); free(next); return -1; }
    /* round 0: accepting or not, numbered by first appearance */
    int32_t n_blocks = 0;
    {
        int32_t lab[2] = {-1, -1};
        for (int64_t q = 0; q < q_n; q++) {
            int a = accepting[q] ? 1 : 0;
            if (lab[a] < 0) lab[a] = n_blocks++;
            block[q] = lab[a];
        }
    }
    for (;;) {
        if (now_s() > deadline) { n_blocks = -2; break; }
        memset(slots, 0, (size_t)n_slots * sizeof(int64_t));
        int32_t n_new = 0;
        for (int64_t q = 0; q < q_n; q++) {
            uint64_t h = sig_hash(t, k_n, block, q);
            int64_t j = (int64_t)(h & (uint64_t)(n_slots - 1));
            int32_t lab = -1;
            while (slots[j]) {
                int64_t r = slots[j] - 1;
                if (hashes[j] == h && sig_equal(t, k_n, block, q, r)) { lab = next[r]; break; }
                j = (j + 1) & (n_slots - 1);
            }
            if (lab < 0) {
                lab = n_new++;
                slots[j] = q + 1;
                hashes[j] = h;
            }
            next[q] = lab;
        }
        int done = n_new == n_blocks;
        memcpy(block, next, (size_t)q_n * sizeof(int32_t));
        n_blocks = n_new;
        if (done) break;
    }
    free(slots); free(hashes); free(next);
    return n_blocks;
}

/* Hopcroft's partition refinement of a (q_n, k_n) table (-1 dead): the coarsest partition
 * where equal blocks have equal futures, O(k n log n). Same contract as cdlm_moore (blocks in
 * order of first appearance by state index); Moore's rounds grow with the longest
 * distinguishing path, which long literals make hundreds. A sink state stands for "dead". */
int64_t cdlm_hopcroft(int64_t q_n, int64_t k_n, const int32_t *t, const uint8_t *accepting,
                      int32_t *block_out, double deadline) {
    if (q_n == 0) return 0;
    int64_t n = q_n + 1, sink = q_n;                      /* with the sink */
    int64_t n_edges = n * k_n;
    int32_t *inv_ptr = (int32_t *)calloc((size_t)(n * k_n + 1), sizeof(int32_t));
    int32_t *inv = (int32_t *)malloc((size_t)(n_edges ? n_edges : 1) * sizeof(int32_t));
    int32_t *elems = (int32_t *)malloc((size_t)n * sizeof(int32_t));
    int32_t *loc = (int32_t *)malloc((size_t)n * sizeof(int32_t));
    int32_t *blk = (int32_t *)malloc((size_t)n * sizeof(int32_t));
    int32_t *first = (int32_t *)malloc((size_t)(n + 1) * sizeof(int32_t));
    int32_t *end = (int32_t *)malloc((size_t)(n + 1) * sizeof(int32_t));
    int32_t *marked = (int32_t *)calloc((size_t)(n + 1), sizeof(int32_t));
    uint8_t *in_work = (uint8_t *)calloc((size_t)(n + 1), 1);
    int32_t *work = (int32_t *)malloc((size_t)(n + 1) * sizeof(int32_t));
    int32_t *touched = (int32_t *)malloc((size_t)(n + 1) * sizeof(int32_t));
    int32_t *splitter = (int32_t *)malloc((size_t)n * sizeof(int32_t));
    int64_t result = -1;
    if (!inv_ptr || !inv || !elems || !loc || !blk || !first || !end || !marked || !in_work ||
        !work || !touched || !splitter) goto out;
#define TARGET(q, k) ((q) == sink ? sink : (t[(q) * k_n + (k)] < 0 ? sink : t[(q) * k_n + (k)]))
    /* predecessors per (target, class) */
    for (int64_t q = 0; q < n; q++)
        for (int64_t k = 0; k < k_n; k++) inv_ptr[TARGET(q, k) * k_n + k + 1]++;
    for (int64_t i = 0; i < n * k_n; i++) inv_ptr[i + 1] += inv_ptr[i];
    {
        int32_t *fill = (int32_t *)malloc((size_t)(n * k_n + 1) * sizeof(int32_t));
        if (!fill) goto out;
        memcpy(fill, inv_ptr, (size_t)(n * k_n + 1) * sizeof(int32_t));
        for (int64_t q = 0; q < n; q++)
            for (int64_t k = 0; k < k_n; k++) inv[fill[TARGET(q, k) * k_n + k]++] = (int32_t)q;
        free(fill);
    }
    /* initial partition: accepting states, the rest, and the sink alone ("dead" is never a
     * state: a dead-end state stays apart from it, as in Moore's version) */
    int64_t n_blocks = 0, pos = 0, n_work = 0;
    for (int pass = 2; pass >= 0; pass--) {
        int64_t start = pos;
        for (int64_t q = 0; q < n; q++) {
            int kind = q == sink ? 0 : (accepting[q] ? 2 : 1);
            if (kind != pass) continue;
            elems[pos] = (int32_t)q; loc[q] = (int32_t)pos; blk[q] = (int32_t)n_blocks; pos++;
        }
        if (pos > start) {
            first[n_blocks] = (int32_t)start; end[n_blocks] = (int32_t)pos;
            work[n_work++] = (int32_t)n_blocks; in_work[n_blocks] = 1;
            n_blocks++;
        }
    }
    int64_t rounds = 0;
    while (n_work) {
        if ((++rounds & 63) == 0 && now_s() > deadline) { result = -2; goto out; }
        int32_t b = work[--n_work];
        in_work[b] = 0;
        int32_t bn = end[b] - first[b];
        memcpy(splitter, elems + first[b], (size_t)bn * sizeof(int32_t));
        for (int64_t k = 0; k < k_n; k++) {
            int64_t n_touched = 0;
            for (int32_t m = 0; m < bn; m++) {
                int32_t r = splitter[m];
                for (int32_t e = inv_ptr[(int64_t)r * k_n + k]; e < inv_ptr[(int64_t)r * k_n + k + 1]; e++) {
                    int32_t q = inv[e], y = blk[q];
                    int32_t at = loc[q], mark_at = first[y] + marked[y];
                    if (at < mark_at) continue;               /* already marked */
                    if (!marked[y]) touched[n_touched++] = y;
                    int32_t other = elems[mark_at];
                    elems[mark_at] = q; loc[q] = mark_at;
                    elems[at] = other; loc[other] = at;
                    marked[y]++;
                }
            }
            for (int64_t i = 0; i < n_touched; i++) {
                int32_t y = touched[i], mk = marked[y], size = end[y] - first[y];
                marked[y] = 0;
                if (mk == size) continue;
                int32_t z = (int32_t)n_blocks++;              /* the marked part, split off */
                first[z] = first[y]; end[z] = first[y] + mk; first[y] += mk;
                for (int32_t j = first[z]; j < end[z]; j++) blk[elems[j]] = z;
                if (in_work[y]) { work[n_work++] = z; in_work[z] = 1; }
                else {
                    int32_t add = mk <= size - mk ? z : y;
                    work[n_work++] = add; in_work[add] = 1;
                }
            }
        }
    }
#undef TARGET
    /* blocks renumbered by first appearance in state order (the sink excluded) */
    {
        int32_t *rename = touched;                        /* reuse: n + 1 entries */
        for (int64_t i = 0; i < n_blocks; i++) rename[i] = -1;
        int32_t next = 0;
        for (int64_t q = 0; q < q_n; q++) {
            int32_t y = blk[q];
            if (rename[y] < 0) rename[y] = next++;
            block_out[q] = rename[y];
        }
        result = next;
    }
out:
    free(inv_ptr); free(inv); free(elems); free(loc); free(blk); free(first); free(end);
    free(marked); free(in_work); free(work); free(touched); free(splitter);
    return result;
}

/* --- graph walks of _trim: reachability with distances, co-reachability, longest path ---- */

/* One breadth-first walk from `initial` (successors in column order): dist[q] the fewest
 * transitions (-1 unreachable), rank[q] q's place in the walk, the states it never reaches
 * last in index order (byte_dfa.breadth_first_rank). Either output may be NULL. */
static int32_t bfs_walk(int64_t s_n, int64_t c_n, const int32_t *t, int64_t initial,
                        int64_t *dist, int64_t *rank) {
    int32_t *queue = (int32_t *)malloc((size_t)(s_n ? s_n : 1) * sizeof(int32_t));
    int64_t *d = dist ? dist : (int64_t *)malloc((size_t)(s_n ? s_n : 1) * sizeof(int64_t));
    if (!queue || !d) { free(queue); if (!dist) free(d); return -1; }
    for (int64_t q = 0; q < s_n; q++) d[q] = -1;
    int64_t head = 0, tail = 0;
    d[initial] = 0;
    queue[tail++] = (int32_t)initial;
    while (head < tail) {
        int32_t q = queue[head++];
        for (int64_t c = 0; c < c_n; c++) {
            int32_t r = t[q * c_n + c];
            if (r >= 0 && d[r] < 0) { d[r] = d[q] + 1; queue[tail++] = r; }
        }
    }
    if (rank) {
        for (int64_t i = 0; i < tail; i++) rank[queue[i]] = i;
        for (int64_t q = 0; q < s_n; q++)
            if (d[q] < 0) rank[q] = tail++;
    }
    free(queue);
    if (!dist) free(d);
    return 0;
}

/* dist[q]: fewest transitions from `initial` (-1 unreachable). */
int32_t cdlm_reach(int64_t s_n, int64_t c_n, const int32_t *t, int64_t initial, int64_t *dist) {
    return bfs_walk(s_n, c_n, t, initial, dist, NULL);
}

/* rank[q]: q's place in the breadth-first walk of cdlm_reach (unreached states last). */
int32_t cdlm_bfs_rank(int64_t s_n, int64_t c_n, const int32_t *t, int64_t initial, int64_t *rank) {
    return bfs_walk(s_n, c_n, t, initial, NULL, rank);
}

/* live[q]: some accepting state is reachable from q. */
int32_t cdlm_coaccessible(int64_t s_n, int64_t c_n, const int32_t *t, const uint8_t *accepting,
                          uint8_t *live) {
    int32_t *ptr = (int32_t *)calloc((size_t)s_n + 1, sizeof(int32_t));
    int64_t m = 0;
    if (!ptr) return -1;
    for (int64_t q = 0; q < s_n; q++)
        for (int64_t c = 0; c < c_n; c++) {
            int32_t r = t[q * c_n + c];
            if (r >= 0) { ptr[r + 1]++; m++; }
        }
    for (int64_t q = 0; q < s_n; q++) ptr[q + 1] += ptr[q];
    int32_t *pred = (int32_t *)malloc((size_t)(m ? m : 1) * sizeof(int32_t));
    int32_t *fill = (int32_t *)malloc(((size_t)s_n + 1) * sizeof(int32_t));
    int32_t *queue = (int32_t *)malloc((size_t)(s_n ? s_n : 1) * sizeof(int32_t));
    if (!pred || !fill || !queue) { free(ptr); free(pred); free(fill); free(queue); return -1; }
    memcpy(fill, ptr, ((size_t)s_n + 1) * sizeof(int32_t));
    for (int64_t q = 0; q < s_n; q++)
        for (int64_t c = 0; c < c_n; c++) {
            int32_t r = t[q * c_n + c];
            if (r >= 0) pred[fill[r]++] = (int32_t)q;
        }
    int64_t head = 0, tail = 0;
    for (int64_t q = 0; q < s_n; q++) {
        live[q] = accepting[q] ? 1 : 0;
        if (live[q]) queue[tail++] = (int32_t)q;
    }
    while (head < tail) {
        int32_t r = queue[head++];
        for (int32_t e = ptr[r]; e < ptr[r + 1]; e++) {
            int32_t q = pred[e];
            if (!live[q]) { live[q] = 1; queue[tail++] = q; }
        }
    }
    free(ptr); free(pred); free(fill); free(queue);
    return 0;
}

/* Most transitions on a path from `initial` to an accepting state; -1 when the graph has a
 * cycle (Kahn's order over every state, as automaton._longest_path), -2 out of memory. */
int64_t cdlm_longest_path(int64_t s_n, int64_t c_n, const int32_t *t, int64_t initial,
                          const uint8_t *accepting) {
    int32_t *indeg = (int32_t *)calloc((size_t)(s_n ? s_n : 1), sizeof(int32_t));
    int64_t *best = (int64_t *)malloc((size_t)(s_n ? s_n : 1) * sizeof(int64_t));
    int32_t *queue = (int32_t *)malloc((size_t)(s_n ? s_n : 1) * sizeof(int32_t));
    int32_t *mark = (int32_t *)malloc((size_t)(s_n ? s_n : 1) * sizeof(int32_t));
    int64_t result = -2;
    if (!indeg || !best || !queue || !mark) goto out;
    /* distinct edges only: a state reached by two classes counts once */
    for (int64_t q = 0; q < s_n; q++) mark[q] = -1;
    for (int64_t q = 0; q < s_n; q++)
        for (int64_t c = 0; c < c_n; c++) {
            int32_t r = t[q * c_n + c];
            if (r >= 0 && mark[r] != q) { mark[r] = (int32_t)q; indeg[r]++; }
        }
    for (int64_t q = 0; q < s_n; q++) { best[q] = -1; mark[q] = -1; }
    best[initial] = 0;
    int64_t head = 0, tail = 0;
    for (int64_t q = 0; q < s_n; q++) if (!indeg[q]) queue[tail++] = (int32_t)q;
    while (head < tail) {
        int32_t q = queue[head++];
        for (int64_t c = 0; c < c_n; c++) {
            int32_t r = t[q * c_n + c];
            if (r < 0 || mark[r] == q) continue;
            mark[r] = q;
            if (best[q] >= 0 && best[q] + 1 > best[r]) best[r] = best[q] + 1;
            if (--indeg[r] == 0) queue[tail++] = r;
        }
    }
    if (tail < s_n) { result = -1; goto out; }
    result = 0;
    for (int64_t q = 0; q < s_n; q++) if (accepting[q] && best[q] > result) result = best[q];
out:
    free(indeg); free(best); free(queue); free(mark);
    return result;
}

#endif

/* --- the counter product and _trim's renumbering ------------------------------------------ */

/* out[(q k_n + k) c_n + c] = base[q][c] k_n + k + inc[q][c]: a state paired with a counter;
 * -1 where base is dead or the counter passes k_n - 1 (with `saturate` it stays there). */
void cdlm_counter_product(int64_t q_n, int64_t c_n, const int32_t *base, const int32_t *inc,
                          int64_t k_n, int32_t saturate, int32_t *out) {
    for (int64_t q = 0; q < q_n; q++)
        for (int64_t k = 0; k < k_n; k++) {
            int32_t *o = out + (q * k_n + k) * c_n;
            for (int64_t c = 0; c < c_n; c++) {
                int32_t b = base[q * c_n + c];
                int64_t k2 = k + inc[q * c_n + c];
                if (k2 >= k_n) {
                    if (!saturate) b = -1;
                    k2 = k_n - 1;
                }
                o[c] = b < 0 ? -1 : (int32_t)(b * k_n + k2);
            }
        }
}

/* keep[q]: reachable from `initial` (dist[q] >= 0, as cdlm_reach) and co-reachable; used[c]:
 * some kept state moves on class c to a kept state. Returns the kept count, -1 out of memory. */
int64_t cdlm_trim_plan(int64_t s_n, int64_t c_n, const int32_t *t, int64_t initial,
                       const uint8_t *accepting, int64_t *dist, uint8_t *keep, uint8_t *used) {
    if (cdlm_reach(s_n, c_n, t, initial, dist) || cdlm_coaccessible(s_n, c_n, t, accepting, keep))
        return -1;
    int64_t n = 0;
    for (int64_t q = 0; q < s_n; q++) {
        keep[q] = keep[q] && dist[q] >= 0;
        n += keep[q];
    }
    memset(used, 0, (size_t)c_n);
    for (int64_t q = 0; q < s_n; q++) {
        if (!keep[q]) continue;
        for (int64_t c = 0; c < c_n; c++) {
            int32_t r = t[q * c_n + c];
            if (r >= 0 && keep[r]) used[c] = 1;
        }
    }
    return n;
}

/* out (kept rows x the n_cols columns `cols`): targets renumbered by `idx`, -1 where the
 * target is dead or dropped (idx -1). */
void cdlm_trim_copy(int64_t s_n, int64_t c_n, const int32_t *t, const int32_t *idx,
                    const int32_t *cols, int64_t n_cols, int32_t *out) {
    for (int64_t q = 0; q < s_n; q++) {
        if (idx[q] < 0) continue;
        const int32_t *row = t + q * c_n;
        for (int64_t j = 0; j < n_cols; j++) {
            int32_t r = row[cols[j]];
            *out++ = r < 0 ? -1 : idx[r];
        }
    }
}
