/* One decode step of a GPT-2- or Llama-family Transformer for n sequences, in plain C.
 *
 * The same math as model/transformer.py and inference/decoder.py, one token per row r:
 *
 *   x  = E[token_r] (+ P[pos_r] for GPT-2) (+ role)
 *   per layer:  h = Norm(x)                             RMSNorm(x) = x / sqrt(mean(x²) + eps)·g
 *                                                       LayerNorm(x) = (x − μ) / sqrt(σ² + eps)·g + b
 *               [q; k; v] = W_qkv h (+ b)               RoPE on q and k at position pos_r (Llama)
 *               K[t], V[t] = k, v                       (row r of the KV cache, written in place)
 *               a_i = softmax(q_i·K_jᵀ / sqrt(d_k)) V_j  head i reads kv head j = i / (H / KV)
 *               x = x + W_o a (+ b)
 *               h = Norm(x)
 *               Llama:  [g; u] = W_gu h (+ b);  x = x + W_down (act(g) ⊙ u) (+ b)
 *               GPT-2:  x = x + W_2 act(W_1 h + b_1) + b_2
 *   logits = W_head Norm(x)
 *
 * act: silu(g) = g / (1 + e^−g), GELU (erf or tanh form) or ReLU, as the model's config says.
 * A weight is float32, or int8 with one scale per output row: W[o, i] ≈ scale[o] · q[o, i], so
 * y[o] = scale[o] · Σ_i q[o, i] x[i] (+ b[o]) — the int8 values are widened to float in registers
 * and the weights stream from memory at a quarter of the bytes (inference/quantize.py).
 *
 * Why it exists: a small model's step is ~80 tensor ops of a few microseconds each, whose
 * dispatch costs about as much as the arithmetic. Here the step is one call, and the products
 * stream each weight once per step for all rows (tiles of 4 weight rows × 4 batch rows), split
 * over `threads` threads by output rows. Sums run in float32 in 16 lanes, so results differ
 * from torch's by float rounding (~1e-6). Built at first use by inference/native_step.py.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PAUSE() _mm_pause()
#else
#define PAUSE() ((void)0)
#endif

enum { ACT_SILU, ACT_GELU_TANH, ACT_GELU_ERF, ACT_RELU };

typedef struct {
    const float *w;       /* float32 weight [rows, cols], row-major; NULL for int8 */
    const int8_t *q;      /* int8 weight [rows, cols]: W[o, i] ≈ scale[o] · q[o, i] */
    const float *scale;   /* [rows] for q */
    const float *b;       /* bias [rows] or NULL */
    int rows, cols;
} Linear;

typedef struct {
    int n_layer, d, n_head, n_kv, dh, d_ff, vocab, len_cap, max_pos;
    int layernorm, gated, act; /* LayerNorm (else RMSNorm); gated FFN [g; u]; activation */
    float eps;
    const float *tok_emb, *pos_emb, *role, *norm_f, *norm_f_b, *cos, *sin;
    const float *const *norm1, *const *norm1_b, *const *norm2, *const *norm2_b;
    const Linear *qkv, *o, *gu, *down; /* one per layer */
    const Linear *lm_head;
    float *const *k_cache, *const *v_cache; /* per layer: [row capacity, n_kv, len_cap, dh] */
    float *scratch; /* rows × (2d + (2 n_head + 2 n_kv) dh + 2 d_ff) + len_cap floats */
} Model;

/* ---------------------------------------------------------------------------------------------
 * y = x·Wᵀ (+ b) for n rows of x: the weights are read once, in tiles of RB rows × NB batch rows */

#define LANES 16
#define RB 4
#define NB 4
/* int8 rows hold 4× fewer bytes per instruction than float32 ones, so fewer cache misses are in
 * flight at once and one core reads memory at half the speed; a software prefetch this far ahead
 * restores it (measured: 5 → 10 GB/s on one core of a Xeon, GPT-2-small's output head) */
#define PREFETCH 8192
typedef float vf __attribute__((vector_size(4 * LANES)));
typedef float vf_u __attribute__((vector_size(4 * LANES), aligned(4), may_alias));

/* 16 int8 values as floats (intrinsics where they exist: gcc 12 scalarizes the generic
 * __builtin_convertvector from int8) */
static inline vf widen(const int8_t *p) {
#if defined(__AVX512F__)
    return (vf)_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
#elif defined(__AVX2__)
    __m128i bytes = _mm_loadu_si128((const __m128i *)p);
    __m256 halves[2] = {_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)),
                        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(bytes, 8)))};
    vf out;
    memcpy(&out, halves, sizeof out);
    return out;
#else
    vf out;
    for (int l = 0; l < LANES; l++) out[l] = (float)p[l];
    return out;
#endif
}

static inline __attribute__((always_inline)) vf load_w(const Linear *L, size_t at, int int8) {
    if (int8) return widen(L->q + at);
    return *(const vf_u *)(L->w + at);
}

/* Σ of a vector's lanes as a tree of halves (a sequential sum would wait on each add) */
_Static_assert(LANES == 16, "hsum halves 16 lanes down to 4");
static inline float hsum(vf v) {
    typedef float half __attribute__((vector_size(2 * LANES)));
    typedef float quarter __attribute__((vector_size(LANES)));
    half h[2];
    memcpy(h, &v, sizeof h);
    half a = h[0] + h[1];
    quarter q[2];
    memcpy(q, &a, sizeof q);
    quarter b = q[0] + q[1];
    return (b[0] + b[2]) + (b[1] + b[3]);
}

static inline float weight_at(const Linear *L, size_t at) {
    return L->q ? (float)L->q[at] : L->w[at];
}

static inline float finish(const Linear *L, int o, float sum) {
    return (L->q ? sum * L->scale[o] : sum) + (L->b ? L->b[o] : 0.0f);
}

/* Rows o..o+RB−1 for batch rows 0..nb−1 of x [nb, cols] into y [nb, L->rows]. Inlined with
 * constant nb and int8, so the accumulators live in registers. */
static inline __attribute__((always_inline)) void tile(const Linear *L, int o, const float *x,
                                                       float *y, int nb, int int8) {
    const int cols = L->cols;
    vf acc[RB][NB];
    memset(acc, 0, sizeof acc);
    int i = 0;
    for (; i + LANES <= cols; i += LANES) {
        vf xv[NB];
        for (int b = 0; b < nb; b++) xv[b] = *(const vf_u *)(x + (size_t)b * cols + i);
        /* the tile's RB rows are one block of memory: fetch it PREFETCH bytes ahead, into L2 */
        const size_t ahead = (size_t)o * cols + (size_t)RB * i;
        if (int8)
            __builtin_prefetch(L->q + ahead + PREFETCH, 0, 2);
        else
            for (int r = 0; r < RB; r++)
                __builtin_prefetch(L->w + ahead + r * LANES + PREFETCH / 4, 0, 2);
        for (int r = 0; r < RB; r++) {
            vf w = load_w(L, (size_t)(o + r) * cols + i, int8);
            for (int b = 0; b < nb; b++) acc[r][b] += w * xv[b];
        }
    }
    for (int r = 0; r < RB; r++)
        for (int b = 0; b < nb; b++) {
            float s = hsum(acc[r][b]);
            for (int j = i; j < cols; j++)
                s += weight_at(L, (size_t)(o + r) * cols + j) * x[(size_t)b * cols + j];
            y[(size_t)b * L->rows + o + r] = finish(L, o + r, s);
        }
}

#define TILE(NB_, INT8)                                                                          \
    static void tile_##NB_##_##INT8(const Linear *L, int o, const float *x, float *y) {          \
        tile(L, o, x, y, NB_, INT8);                                                             \
    }
TILE(1, 0) TILE(2, 0) TILE(3, 0) TILE(4, 0) TILE(1, 1) TILE(2, 1) TILE(3, 1) TILE(4, 1)
typedef void (*TileFn)(const Linear *, int, const float *, float *);
static const TileFn TILES[2][NB + 1] = {
    {NULL, tile_1_0, tile_2_0, tile_3_0, tile_4_0},
    {NULL, tile_1_1, tile_2_1, tile_3_1, tile_4_1},
};

/* Output rows begin..end−1 (a multiple of RB apart, but for the last) of y [n, L->rows]. */
static void linear_rows(const Linear *L, const float *x, float *y, int n, int begin, int end) {
    int o = begin;
    for (; o + RB <= end; o += RB)
        for (int b = 0; b < n; b += NB) {
            int nb = n - b < NB ? n - b : NB;
            TILES[L->q != NULL][nb](L, o, x + (size_t)b * L->cols, y + (size_t)b * L->rows);
        }
    for (; o < end; o++) /* the last rows, one at a time */
        for (int b = 0; b < n; b++) {
            float s = 0;
            for (int i = 0; i < L->cols; i++)
                s += weight_at(L, (size_t)o * L->cols + i) * x[(size_t)b * L->cols + i];
            y[(size_t)b * L->rows + o] = finish(L, o, s);
        }
}

/* ---------------------------------------------------------------------------------------------
 * A small thread pool. Each product is cut into chunks of output rows that the caller and the
 * workers claim one at a time, so a worker the OS has not scheduled (a busy machine) leaves its
 * share to the others instead of stalling the step. Workers spin briefly for the next product
 * (they follow each other closely within a step), then sleep.
 *
 * `claim` packs the product's number (high 32 bits), its chunk count and the next unclaimed
 * chunk (16 bits each). A thread that wins a chunk by compare-and-swap reads the product's
 * fields only then: the caller cannot publish the next product before every chunk is done. */

#define MAX_THREADS 64
#define SPIN 2000
#define CHUNKS_PER_THREAD 4

static struct {
    pthread_mutex_t mu, busy;
    pthread_cond_t wake;
    atomic_uint_least64_t claim;
    atomic_int done;
    int workers, helpers; /* workers started; workers 1..helpers take part in the product */
    const Linear *L; /* the product: y [n, L->rows] = x [n, L->cols]·Wᵀ */
    const float *x;
    float *y;
    int n;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .busy = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER};

static inline uint64_t pack(uint64_t product, uint64_t chunks, uint64_t next) {
    return product << 32 | chunks << 16 | next;
}

/* Claims and runs chunks of the current product until none is left; returns how many it ran. */
static int run_chunks(void) {
    int ran = 0;
    uint64_t c = atomic_load_explicit(&pool.claim, memory_order_acquire);
    for (;;) {
        uint64_t chunks = c >> 16 & 0xffff, next = c & 0xffff;
        if (next >= chunks) return ran;
        if (!atomic_compare_exchange_weak_explicit(&pool.claim, &c, c + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        int blocks = (pool.L->rows + RB - 1) / RB;
        int begin = (int)((long)blocks * next / chunks) * RB;
        int end = (int)((long)blocks * (next + 1) / chunks) * RB;
        linear_rows(pool.L, pool.x, pool.y, pool.n, begin, end < pool.L->rows ? end : pool.L->rows);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
        ran++;
        c = atomic_load_explicit(&pool.claim, memory_order_acquire);
    }
}

static void *worker(void *arg) {
    const int id = (int)(intptr_t)arg; /* 1 .. workers */
    uint64_t seen = atomic_load(&pool.claim) >> 32;
    for (int spins = 0;; spins++) {
        uint64_t product = atomic_load_explicit(&pool.claim, memory_order_acquire) >> 32;
        if (product != seen) {
            seen = product;
            spins = 0;
            if (id <= pool.helpers) run_chunks();
        } else if (spins < SPIN) {
            PAUSE();
        } else {
            pthread_mutex_lock(&pool.mu);
            while (atomic_load(&pool.claim) >> 32 == seen) pthread_cond_wait(&pool.wake, &pool.mu);
            pthread_mutex_unlock(&pool.mu);
        }
    }
    return NULL;
}

/* A forked child has no workers, and no lock another thread held. */
static void forget_workers(void) {
    pool.workers = 0;
    pthread_mutex_init(&pool.mu, NULL);
    pthread_mutex_init(&pool.busy, NULL);
    pthread_cond_init(&pool.wake, NULL);
}

/* Up to `want` workers (fewer if threads cannot be made); returns how many of them take part.
 * Called with pool.busy held. */
static int start_workers(int want) {
    static int registered = 0;
    if (!registered) registered = !pthread_atfork(NULL, NULL, forget_workers);
    if (want > MAX_THREADS - 1) want = MAX_THREADS - 1;
    while (pool.workers < want) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, worker, (void *)(intptr_t)(pool.workers + 1));
        pthread_attr_destroy(&attr);
        if (failed) break;
        pool.workers++;
    }
    return pool.workers < want ? pool.workers : want;
}

/* Publishes the product as `chunks` chunks for the caller and `helpers` workers, works on it,
 * and returns when every chunk is done. Called with pool.busy held. */
static void run_parallel(const Linear *L, const float *x, float *y, int n, int chunks,
                         int helpers) {
    pool.L = L, pool.x = x, pool.y = y, pool.n = n, pool.helpers = helpers;
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    uint64_t product = ((atomic_load(&pool.claim) >> 32) + 1) & 0xffffffff;
    pthread_mutex_lock(&pool.mu);
    atomic_store_explicit(&pool.claim, pack(product, chunks, 0), memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
    run_chunks();
    for (int spins = 0; atomic_load_explicit(&pool.done, memory_order_acquire) < chunks; spins++)
        if (spins < SPIN) PAUSE();
        else sched_yield(); /* a worker holding a chunk may be waiting for this core */
}

/* y [n, L->rows] = x [n, L->cols]·Wᵀ (+ b), on up to `threads` threads when worth it (one
 * product at a time: a concurrent caller runs its own on one thread). */
static void linear(const Linear *L, const float *x, float *y, int n, int threads) {
    int chunks = threads * CHUNKS_PER_THREAD, blocks = L->rows / RB;
    if (chunks > blocks) chunks = blocks;
    int worth = threads >= 2 && chunks >= 2 && (long)L->rows * L->cols * n >= (1L << 16);
    if (worth && pthread_mutex_trylock(&pool.busy) == 0) {
        int helpers = start_workers(threads - 1);
        if (helpers > 0) run_parallel(L, x, y, n, chunks, helpers);
        pthread_mutex_unlock(&pool.busy);
        if (helpers > 0) return;
    }
    linear_rows(L, x, y, n, 0, L->rows);
}

/* ---------------------------------------------------------------------------------------------
 * the step */

/* Σ_i a[i] b[i], in LANES partial sums */
static inline float dot(const float *a, const float *b, int n) {
    vf acc = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES) acc += *(const vf_u *)(a + i) * *(const vf_u *)(b + i);
    float s = hsum(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* out[e] = Σ_{c = from..to} p[c] V[c, e] for V [*, dh], LANES columns at a time in registers */
static void weighted_sum(const float *p, const float *V, int from, int to, int dh, float *out) {
    int e = 0;
    for (; e + LANES <= dh; e += LANES) {
        vf acc = {0};
        for (int c = from; c <= to; c++) acc += p[c] * *(const vf_u *)(V + (size_t)c * dh + e);
        memcpy(out + e, &acc, sizeof acc);
    }
    for (; e < dh; e++) {
        float acc = 0;
        for (int c = from; c <= to; c++) acc += p[c] * V[(size_t)c * dh + e];
        out[e] = acc;
    }
}

/* RMSNorm: x / sqrt(mean(x²) + eps) · g;  LayerNorm: (x − μ) / sqrt(σ² + eps) · g + b */
static void norm(const Model *m, const float *x, const float *g, const float *b, float *out) {
    const int d = m->d;
    float mean = 0, ss = 0;
    if (m->layernorm) {
        for (int i = 0; i < d; i++) mean += x[i];
        mean /= d;
    }
    for (int i = 0; i < d; i++) ss += (x[i] - mean) * (x[i] - mean);
    float r = 1.0f / sqrtf(ss / d + m->eps);
    for (int i = 0; i < d; i++) out[i] = g[i] * ((x[i] - mean) * r) + (b ? b[i] : 0.0f);
}

static float activation(int act, float x) {
    switch (act) {
    case ACT_SILU: return x / (1.0f + expf(-x));
    case ACT_GELU_TANH:
        return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case ACT_GELU_ERF: return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
    default: return x > 0 ? x : 0.0f;
    }
}

/* x·cos + rotate_half(x)·sin with rotate_half(x1, x2) = (−x2, x1), in place. */
static void rope(float *x, const float *cos, const float *sin, int dh) {
    int half = dh / 2;
    for (int i = 0; i < half; i++) {
        float x1 = x[i], x2 = x[i + half];
        x[i] = x1 * cos[i] - x2 * sin[i];
        x[i + half] = x2 * cos[i + half] + x1 * sin[i + half];
    }
}

/* One row's attention: RoPE on its q and k, its k and v written at cache column t, then every
 * head over columns start..t. qkv [(H + 2 KV) dh] → att [H dh]. */
static void attend(const Model *m, int layer, int row, float *qkv, int pos, int start, int t,
                   float *att, float *scores) {
    const int H = m->n_head, KV = m->n_kv, dh = m->dh, group = H / KV;
    const float scale = 1.0f / sqrtf((float)dh);
    if (m->cos)
        for (int j = 0; j < H + KV; j++)
            rope(qkv + j * dh, m->cos + (size_t)pos * dh, m->sin + (size_t)pos * dh, dh);
    size_t row_size = (size_t)KV * m->len_cap * dh;
    float *K = m->k_cache[layer] + row * row_size, *V = m->v_cache[layer] + row * row_size;
    for (int j = 0; j < KV; j++) {
        memcpy(K + ((size_t)j * m->len_cap + t) * dh, qkv + (H + j) * dh, dh * sizeof(float));
        memcpy(V + ((size_t)j * m->len_cap + t) * dh, qkv + (H + KV + j) * dh, dh * sizeof(float));
    }
    for (int i = 0; i < H; i++) {
        const float *q = qkv + i * dh;
        const float *Kj = K + (size_t)(i / group) * m->len_cap * dh;
        const float *Vj = V + (size_t)(i / group) * m->len_cap * dh;
        float top = -INFINITY, total = 0;
        for (int c = start; c <= t; c++) {
            scores[c] = dot(q, Kj + (size_t)c * dh, dh) * scale;
            if (scores[c] > top) top = scores[c];
        }
        for (int c = start; c <= t; c++) {
            scores[c] = expf(scores[c] - top);
            total += scores[c];
        }
        for (int c = start; c <= t; c++) scores[c] /= total;
        weighted_sum(scores, Vj, start, t, dh, att + i * dh);
    }
}

/* x += W_down act(W_gu h): ff holds [n, (gated ? 2 : 1) d_ff], compacted to [n, d_ff] in place
 * (row r's d_ff results land below row r's inputs, which are read first). */
static void feed_forward(const Model *m, int layer, int n, float *x, float *h, float *ff,
                         int threads) {
    const int d = m->d, f = m->d_ff, width = (m->gated ? 2 : 1) * f;
    linear(&m->gu[layer], h, ff, n, threads);
    for (int r = 0; r < n; r++)
        for (int i = 0; i < f; i++) {
            const float *in = ff + (size_t)r * width;
            ff[(size_t)r * f + i] = activation(m->act, in[i]) * (m->gated ? in[f + i] : 1.0f);
        }
    linear(&m->down[layer], ff, h, n, threads);
    for (size_t i = 0; i < (size_t)n * d; i++) x[i] += h[i];
}

static int out_of_range(const Model *m, int n, const int *tokens, const int *pos,
                        const int *start, int t) {
    if (n < 1 || t < 0 || t >= m->len_cap) return 1;
    for (int r = 0; r < n; r++)
        if (tokens[r] < 0 || tokens[r] >= m->vocab || pos[r] < 0 || pos[r] >= m->max_pos ||
            start[r] < 0 || start[r] > t)
            return 1;
    return 0;
}

/* Writes logits [n, vocab]; row r's keys and values go to its cache column t, its attention reads
 * columns start[r]..t (its own positions 0..pos[r]). Returns 0, or 1 (nothing written) if a
 * token or a position is out of range. */
int decode_step(const Model *m, int n, const int *tokens, const int *pos, const int *start, int t,
                float *logits, int threads) {
    if (out_of_range(m, n, tokens, pos, start, t)) return 1;
    const int d = m->d, H = m->n_head, KV = m->n_kv, dh = m->dh, width = (H + 2 * KV) * dh;
    float *x = m->scratch, *h = x + (size_t)n * d, *qkv = h + (size_t)n * d;
    float *att = qkv + (size_t)n * width, *ff = att + (size_t)n * H * dh;
    float *scores = ff + (size_t)n * 2 * m->d_ff;

    for (int r = 0; r < n; r++)
        for (int i = 0; i < d; i++) {
            float v = m->tok_emb[(size_t)tokens[r] * d + i];
            if (m->pos_emb) v += m->pos_emb[(size_t)pos[r] * d + i];
            x[(size_t)r * d + i] = v + (m->role ? m->role[i] : 0.0f);
        }
    for (int layer = 0; layer < m->n_layer; layer++) {
        for (int r = 0; r < n; r++)
            norm(m, x + (size_t)r * d, m->norm1[layer], m->norm1_b[layer], h + (size_t)r * d);
        linear(&m->qkv[layer], h, qkv, n, threads);
        for (int r = 0; r < n; r++)
            attend(m, layer, r, qkv + (size_t)r * width, pos[r], start[r], t,
                   att + (size_t)r * H * dh, scores);
        linear(&m->o[layer], att, h, n, threads);
        for (size_t i = 0; i < (size_t)n * d; i++) x[i] += h[i];
        for (int r = 0; r < n; r++)
            norm(m, x + (size_t)r * d, m->norm2[layer], m->norm2_b[layer], h + (size_t)r * d);
        feed_forward(m, layer, n, x, h, ff, threads);
    }
    for (int r = 0; r < n; r++)
        norm(m, x + (size_t)r * d, m->norm_f, m->norm_f_b, h + (size_t)r * d);
    linear(m->lm_head, h, logits, n, threads);
    return 0;
}
