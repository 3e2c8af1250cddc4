/* One decode step of a GPT-2- or Llama-family Transformer for one sequence, in plain C.
 *
 * The same math as model/transformer.py and inference/decoder.py, one token at a time:
 *
 *   x  = E[token] (+ P[pos] for GPT-2) (+ role)
 *   per layer:  h = Norm(x)                             RMSNorm(x) = x / sqrt(mean(x²) + eps)·g
 *                                                       LayerNorm(x) = (x − μ) / sqrt(σ² + eps)·g + b
 *               [q; k; v] = W_qkv h (+ b)               RoPE on q and k at position `pos` (Llama)
 *               K[t], V[t] = k, v                       (the KV cache, written in place)
 *               a_i = softmax(q_i·K_jᵀ / sqrt(d_k)) V_j  head i reads kv head j = i / (H / KV)
 *               x = x + W_o a (+ b)
 *               h = Norm(x)
 *               Llama:  [g; u] = W_gu h (+ b);  x = x + W_down (act(g) ⊙ u) (+ b)
 *               GPT-2:  x = x + W_2 act(W_1 h + b_1) + b_2
 *   logits = W_head Norm(x)
 *
 * act: silu(g) = g / (1 + e^−g), GELU (erf or tanh form) or ReLU, as the model's config says.
 *
 * Why it exists: at batch 1 a small model's step is ~80 tensor ops of a few microseconds each,
 * and their dispatch costs about as much as the arithmetic. Here the step is one call, and
 * the matrix-vector products stream the weights at the machine's memory bandwidth. Sums run
 * in float32 in 16 lanes, so results differ from torch's by float rounding (~1e-6).
 * Built at first use by inference/native_step.py; nothing else depends on it.
 */
#include <math.h>
#include <stddef.h>

enum { ACT_SILU, ACT_GELU_TANH, ACT_GELU_ERF, ACT_RELU };

typedef struct {
    int n_layer, d, n_head, n_kv, dh, d_ff, vocab, len_cap, max_pos;
    int layernorm, gated, act; /* LayerNorm (else RMSNorm); gated FFN [g; u]; activation */
    float eps;
    const float *tok_emb, *pos_emb, *role, *norm_f, *norm_f_b, *lm_head, *cos, *sin;
    const float *const *norm1, *const *norm1_b, *const *wqkv, *const *bqkv, *const *wo, *const *bo;
    const float *const *norm2, *const *norm2_b, *const *wgu, *const *bgu, *const *wdown,
        *const *bdown;
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
    const float scale = 1.0f / sqrtf((float)dh);

    for (int i = 0; i < d; i++) {
        x[i] = m->tok_emb[(size_t)token * d + i];
        if (m->pos_emb) x[i] += m->pos_emb[(size_t)pos * d + i];
        if (m->role) x[i] += m->role[i];
    }

    for (int layer = 0; layer < m->n_layer; layer++) {
        norm(m, x, m->norm1[layer], m->norm1_b[layer], h);
        matvec(m->wqkv[layer], h, m->bqkv[layer], qkv, (H + 2 * KV) * dh, d);
        if (m->cos)
            for (int j = 0; j < H + KV; j++)
                rope(qkv + j * dh, m->cos + (size_t)pos * dh, m->sin + (size_t)pos * dh, dh);

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

        norm(m, x, m->norm2[layer], m->norm2_b[layer], h);
        matvec(m->wgu[layer], h, m->bgu[layer], ff, (m->gated ? 2 : 1) * m->d_ff, d);
        for (int i = 0; i < m->d_ff; i++)
            ff[i] = activation(m->act, ff[i]) * (m->gated ? ff[m->d_ff + i] : 1.0f);
        matvec(m->wdown[layer], ff, m->bdown[layer], h, d, m->d_ff);
        for (int i = 0; i < d; i++) x[i] += h[i];
    }
    norm(m, x, m->norm_f, m->norm_f_b, h);
    matvec(m->lm_head, h, NULL, logits, m->vocab, d);
    return 0;
}
