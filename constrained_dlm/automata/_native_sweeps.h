/* The decode stage's host loops: the reach/live sweep (decode/sweeps.py: reach_live_seq) and
 * the edge lists of a group's tables (decode/groups.py).
 *
 * On a CPU the torch sweep spends its time in op overhead, about ten small ops per position
 * and direction; the same walk here is one pass over the states or state pairs per position.
 * The edge lists replace two sorts of every edge (np.unique, np.lexsort) by counting. Results
 * are the numpy and torch versions', bit for bit (tests/test_sweeps.py compares them). */

/* reach, live: (h_n, n_n + 1, s_n) bytes. A masked position moves through every (src, dst)
 * pair, a committed one through its class's transition (trans: (s_n, c_n), -1 dead; a class
 * out of range moves nowhere), a position outside its hole (present 0) keeps the set. */
void cdlm_reach_live(int64_t h_n, int64_t n_n, int64_t s_n, int64_t c_n, const uint8_t *masked,
                     const int64_t *cls, const uint8_t *present, const int64_t *trans,
                     int64_t u_n, const int64_t *psrc, const int64_t *pdst, int64_t initial,
                     const uint8_t *accepting, uint8_t *reach, uint8_t *live) {
    for (int64_t h = 0; h < h_n; h++) {
        uint8_t *rh = reach + h * (n_n + 1) * s_n, *lh = live + h * (n_n + 1) * s_n;
        memset(rh, 0, (size_t)((n_n + 1) * s_n));
        memset(lh, 0, (size_t)((n_n + 1) * s_n));
        rh[initial] = 1;
        for (int64_t i = 0; i < n_n; i++) {
            const uint8_t *cur = rh + i * s_n;
            uint8_t *nxt = rh + (i + 1) * s_n;
            int64_t at = h * n_n + i;
            if (!present[at]) {
                memcpy(nxt, cur, (size_t)s_n);
            } else if (masked[at]) {
                for (int64_t u = 0; u < u_n; u++)
                    if (cur[psrc[u]]) nxt[pdst[u]] = 1;
            } else if (cls[at] >= 0 && cls[at] < c_n) {
                for (int64_t s = 0; s < s_n; s++) {
                    int64_t r = trans[s * c_n + cls[at]];
                    if (cur[s] && r >= 0) nxt[r] = 1;
                }
            }
        }
        memcpy(lh + n_n * s_n, accepting, (size_t)s_n);
        for (int64_t i = n_n - 1; i >= 0; i--) {
            const uint8_t *nl = lh + (i + 1) * s_n;
            uint8_t *cur = lh + i * s_n;
            int64_t at = h * n_n + i;
            if (!present[at]) {
                memcpy(cur, nl, (size_t)s_n);
            } else if (masked[at]) {
                for (int64_t u = 0; u < u_n; u++)
                    if (nl[pdst[u]]) cur[psrc[u]] = 1;
            } else if (cls[at] >= 0 && cls[at] < c_n) {
                for (int64_t s = 0; s < s_n; s++) {
                    int64_t r = trans[s * c_n + cls[at]];
                    cur[s] = r >= 0 && nl[r];
                }
            }
        }
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The edge lists of decode/groups.py's tables, from a (s_n, c_n) table (-1 dead): the valid
 * transitions row by row (src, cls, dst: e_n of them, counted by the caller), the distinct
 * (src, dst) pairs sorted by src then dst (pair_src, pair_dst; returns their number, -1 out of
 * memory), the pair of each edge, and the edges' pairs in class order (crow: c_n + 1 offsets,
 * col), within a class by pair: np.unique + np.lexsort's result. A DFA row has one edge per
 * class, so a stable counting sort of the row-major edges by class is already in pair order. */
int64_t cdlm_group_edges(int64_t s_n, int64_t c_n, const int64_t *t, int64_t *src, int64_t *cls,
                         int64_t *dst, int64_t *pair_src, int64_t *pair_dst, int64_t *pair_of,
                         int64_t *crow, int64_t *col) {
    int64_t *row = (int64_t *)malloc((size_t)(c_n ? c_n : 1) * sizeof(int64_t));
    int64_t *pid = (int64_t *)malloc((size_t)(s_n ? s_n : 1) * sizeof(int64_t));
    int64_t *stamp = (int64_t *)malloc((size_t)(s_n ? s_n : 1) * sizeof(int64_t));
    if (!row || !pid || !stamp) { free(row); free(pid); free(stamp); return -1; }
    for (int64_t q = 0; q < s_n; q++) stamp[q] = -1;
    int64_t e = 0, u = 0;
    memset(crow, 0, (size_t)(c_n + 1) * sizeof(int64_t));
    for (int64_t q = 0; q < s_n; q++) {
        int64_t d = 0;                               /* this row's distinct targets, sorted */
        for (int64_t c = 0; c < c_n; c++) {
            int64_t r = t[q * c_n + c];
            if (r >= 0 && stamp[r] != q) { stamp[r] = q; row[d++] = r; }
        }
        qsort(row, (size_t)d, sizeof(int64_t), cmp_i64);
        for (int64_t j = 0; j < d; j++) {
            pid[row[j]] = u;
            pair_src[u] = q;
            pair_dst[u++] = row[j];
        }
        for (int64_t c = 0; c < c_n; c++) {
            int64_t r = t[q * c_n + c];
            if (r < 0) continue;
            src[e] = q; cls[e] = c; dst[e] = r; pair_of[e++] = pid[r];
            crow[c + 1]++;
        }
    }
    for (int64_t c = 0; c < c_n; c++) crow[c + 1] += crow[c];
    int64_t *fill = row;                           /* reused: per-class write offsets */
    if (c_n) memcpy(fill, crow, (size_t)c_n * sizeof(int64_t));
    for (int64_t j = 0; j < e; j++) col[fill[cls[j]]++] = pair_of[j];
    free(row); free(pid); free(stamp);
    return u;
}
