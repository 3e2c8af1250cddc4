/* One decode step of a Llama-family Transformer for one sequence, in plain C.
 *
 * The same math as model/transformer.py and inference/decoder.py, one token at a time:
 *
 *   x  = E[token] (+ role)
 *   per layer:  h = RMSNorm(x)·g1                      RMSNorm(x) = x / sqrt(mean(x²) + eps)
 *               [q; k; v] = W_qkv h (+ b)               RoPE on q and k at position `pos`
 *               K[t], V[t] = k, v                       (the KV cache, written in place)
 *               a_i = softmax(q_i·K_jᵀ / sqrt(d_k)) V_j  head i reads kv head j = i / (H / KV)
 *               x = x + W_o a (+ b)
 *               h = RMSNorm(x)·g2;  [g; u] = W_gu h (+ b)
 *               x = x + W_down (silu(g) ⊙ u) (+ b)      silu(g) = g / (1 + e^-g)
 *   logits = W_head RMSNorm(x)·g_f
 *
 * Why it exists: at batch 1 a small model's step is ~80 tensor ops of a few microseconds each,
 * and their dispatch costs about as much as the arithmetic. Here the step is one call, and
 * the matrix-vector products stream the weights at the machine's memory bandwidth. Sums run
 * in float32 in 16 lanes, so results differ from torch's by float rounding (~1e-6).
 * Built at first use by inference/native_step.py; nothing else depends on it.
 */
#include <math.h>
#include <stddef.h>

typedef struct {
    int n_layer, d, n_head, n_kv, dh, d_ff, vocab, len_cap, max_pos;
    float eps;
    const float *tok_emb, *role, *norm_f, *lm_head, *cos, *sin;
    const float *const *norm1, *const *wqkv, *const *bqkv, *const *wo, *const *bo;
    const float *const *norm2, *const *wgu, *const *bgu, *const *wdown, *const *bdown;
    float *const *k_cache, *const *v_cache; /* per layer: row 0 of [rows, n_kv, len_cap, dh] */
    float *scratch; /* d + d + (n_head + 2 n_kv) dh + n_head dh + len_cap + 2 d_ff floats */
} Model;

#define LANES 16

/* y[o] = Σ_i W[o, i] x[i] (+ b[o]) for W [rows, cols] row-major; four rows share each x load. */
static void matvec(const float *W, const float *x, const float *b, float *y, int rows, int cols) {
    int o = 0;
    for (; o + 4 <= rows; o += 4) {
        const float *w0 = W + (size_t)o * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        float a0[LANES] = {0}, a1[LANES] = {0}, a2[LANES] = {0}, a3[LANES] = {0};
        int i = 0;
        for (; i + LANES <= cols; i += LANES) {
            for (int l = 0; l < LANES; l++) {
                float xv = x[i + l];
                a0[l] += w0[i + l] * xv;
                a1[l] += w1[i + l] * xv;
                a2[l] += w2[i + l] * xv;
                a3[l] += w3[i + l] * xv;
            }
        }
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int l = 0; l < LANES; l++) {
            s0 += a0[l];
            s1 += a1[l];
            s2 += a2[l];
            s3 += a3[l];
        }
        for (; i < cols; i++) {
            s0 += w0[i] * x[i];
            s1 += w1[i] * x[i];
            s2 += w2[i] * x[i];
            s3 += w3[i] * x[i];
        }
        y[o] = s0 + (b ? b[o] : 0.0f);
        y[o + 1] = s1 + (b ? b[o + 1] : 0.0f);
        y[o + 2] = s2 + (b ? b[o + 2] : 0.0f);
        y[o + 3] = s3 + (b ? b[o + 3] : 0.0f);
    }
    for (; o < rows; o++) {
        const float *w = W + (size_t)o * cols;
        float s = 0;
        for (int i = 0; i < cols; i++) s += w[i] * x[i];
        y[o] = s + (b ? b[o] : 0.0f);
    }
}

/* out = x / sqrt(mean(x²) + eps) · g */
static void rmsnorm(const float *x, const float *g, float eps, float *out, int d) {
    float ss = 0;
    for (int i = 0; i < d; i++) ss += x[i] * x[i];
    float r = 1.0f / sqrtf(ss / d + eps);
    for (int i = 0; i < d; i++) out[i] = g[i] * (x[i] * r);
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

/* Writes logits [vocab]; keys and values of this token go to cache column t, attention reads
 * columns start..t (the row's own positions 0..pos). Returns 0, or 1 (nothing written) if the
 * token or a position is out of range. */
int decode_step(const Model *m, int token, int pos, int start, int t, float *logits) {
    if (token < 0 || token >= m->vocab || pos < 0 || pos >= m->max_pos || start < 0 || start > t ||
        t >= m->len_cap)
        return 1;
    const int d = m->d, H = m->n_head, KV = m->n_kv, dh = m->dh, group = H / KV;
    float *x = m->scratch, *h = x + d, *qkv = h + d, *att = qkv + (H + 2 * KV) * dh;
    float *scores = att + H * dh, *ff = scores + m->len_cap;
    const float *cos = m->cos + (size_t)pos * dh, *sin = m->sin + (size_t)pos * dh;
    const float scale = 1.0f / sqrtf((float)dh);

    for (int i = 0; i < d; i++)
        x[i] = m->tok_emb[(size_t)token * d + i] + (m->role ? m->role[i] : 0.0f);

    for (int layer = 0; layer < m->n_layer; layer++) {
        rmsnorm(x, m->norm1[layer], m->eps, h, d);
        matvec(m->wqkv[layer], h, m->bqkv[layer], qkv, (H + 2 * KV) * dh, d);
        for (int j = 0; j < H + KV; j++) rope(qkv + j * dh, cos, sin, dh);

        float *K = m->k_cache[layer], *V = m->v_cache[layer];
        for (int j = 0; j < KV; j++) {
            float *kdst = K + ((size_t)j * m->len_cap + t) * dh;
            float *vdst = V + ((size_t)j * m->len_cap + t) * dh;
            for (int e = 0; e < dh; e++) {
                kdst[e] = qkv[(H + j) * dh + e];
                vdst[e] = qkv[(H + KV + j) * dh + e];
            }
        }
        for (int i = 0; i < H; i++) {
            const float *q = qkv + i * dh;
            const float *Kj = K + (size_t)(i / group) * m->len_cap * dh;
            const float *Vj = V + (size_t)(i / group) * m->len_cap * dh;
            float top = -INFINITY, total = 0;
            for (int c = start; c <= t; c++) {
                float s = 0;
                for (int e = 0; e < dh; e++) s += q[e] * Kj[(size_t)c * dh + e];
                scores[c] = s * scale;
                if (scores[c] > top) top = scores[c];
            }
            for (int c = start; c <= t; c++) {
                scores[c] = expf(scores[c] - top);
                total += scores[c];
            }
            float *a = att + i * dh;
            for (int e = 0; e < dh; e++) a[e] = 0;
            for (int c = start; c <= t; c++) {
                float p = scores[c] / total;
                for (int e = 0; e < dh; e++) a[e] += p * Vj[(size_t)c * dh + e];
            }
        }
        matvec(m->wo[layer], att, m->bo[layer], h, d, H * dh);
        for (int i = 0; i < d; i++) x[i] += h[i];

        rmsnorm(x, m->norm2[layer], m->eps, h, d);
        matvec(m->wgu[layer], h, m->bgu[layer], ff, 2 * m->d_ff, d);
        for (int i = 0; i < m->d_ff; i++) {
            float g = ff[i];
            ff[i] = g / (1.0f + expf(-g)) * ff[m->d_ff + i];
        }
        matvec(m->wdown[layer], ff, m->bdown[layer], h, d, m->d_ff);
        for (int i = 0; i < d; i++) x[i] += h[i];
    }
    rmsnorm(x, m->norm_f, m->eps, h, d);
    matvec(m->lm_head, h, NULL, logits, m->vocab, d);
    return 0;
}
