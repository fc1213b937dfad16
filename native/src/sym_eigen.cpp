#include "sym_eigen.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <exception>
#include <thread>

#include "cpu_features.h"
#include "linalg.h"
#include "errors.h"

namespace graft {

namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();

void check_cancel(const std::atomic<bool> * cancel) {
    if (cancel && cancel->load(std::memory_order_relaxed)) throw GraftError("the null-space computation was cancelled");
}

// Runs fn(0…threads−1), fn(0) on the calling thread. Threads are started per call: the
// callers' units of work are milliseconds or more, against tens of microseconds per start.
template <typename F>
void run_parallel(int threads, F && fn) {
    std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
    auto guarded = [&](int t) {
        try {
            fn(t);
        } catch (...) {
            errors[t] = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(guarded, t);
    guarded(0);
    for (auto & th : pool) th.join();
    for (auto & e : errors) {
        if (e) std::rethrow_exception(e);
    }
}

// ---------------------------------------------------------------------------------------------
// Householder tridiagonalisation.
//
// The unblocked reduction is memory-bound: each step reads the trailing matrix for the
// product B·v and then reads and writes it again for the rank-2 update B − v wᵀ − w vᵀ. Here
// the rank-2 update of step k−1 is deferred into step k's pass, so each step streams the
// trailing lower triangle once (read + write). Only the column that step k needs to build its
// reflector is brought up to date eagerly, and it is captured during the previous pass, so the
// strided column is never read from the matrix.

// One row segment of the fused pass, j ∈ [0, len): a ← a − (pvi·pw[j] + pwi·pv[j]) (the deferred
// update), p[j] += a·vi (the upper triangle's contribution to B·v); returns Σ a·v[j] (the lower
// triangle's contribution to (B·v)_i).
double fused_row_generic(double * __restrict a, const double * __restrict pv, const double * __restrict pw, const double * __restrict v,
                         double * __restrict p, int len, double pvi, double pwi, double vi) {
    double s0 = 0, s1 = 0;
    int j = 0;
    for (; j + 2 <= len; j += 2) {
        const double a0 = a[j] - pvi * pw[j] - pwi * pv[j];
        const double a1 = a[j + 1] - pvi * pw[j + 1] - pwi * pv[j + 1];
        a[j] = a0;
        a[j + 1] = a1;
        s0 += a0 * v[j];
        s1 += a1 * v[j + 1];
        p[j] += a0 * vi;
        p[j + 1] += a1 * vi;
    }
    for (; j < len; ++j) {
        const double a0 = a[j] - pvi * pw[j] - pwi * pv[j];
        a[j] = a0;
        s0 += a0 * v[j];
        p[j] += a0 * vi;
    }
    return s0 + s1;
}

__attribute__((target("avx2,fma"))) double fused_row_avx2(double * __restrict a, const double * __restrict pv, const double * __restrict pw,
                                                           const double * __restrict v, double * __restrict p, int len, double pvi, double pwi,
                                                           double vi) {
    const __m256d PVI = _mm256_set1_pd(pvi), PWI = _mm256_set1_pd(pwi), VI = _mm256_set1_pd(vi);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int j = 0;
    for (; j + 8 <= len; j += 8) {
        __m256d a0 = _mm256_loadu_pd(a + j), a1 = _mm256_loadu_pd(a + j + 4);
        a0 = _mm256_fnmadd_pd(PVI, _mm256_loadu_pd(pw + j), a0);
        a1 = _mm256_fnmadd_pd(PVI, _mm256_loadu_pd(pw + j + 4), a1);
        a0 = _mm256_fnmadd_pd(PWI, _mm256_loadu_pd(pv + j), a0);
        a1 = _mm256_fnmadd_pd(PWI, _mm256_loadu_pd(pv + j + 4), a1);
        _mm256_storeu_pd(a + j, a0);
        _mm256_storeu_pd(a + j + 4, a1);
        s0 = _mm256_fmadd_pd(a0, _mm256_loadu_pd(v + j), s0);
        s1 = _mm256_fmadd_pd(a1, _mm256_loadu_pd(v + j + 4), s1);
        _mm256_storeu_pd(p + j, _mm256_fmadd_pd(a0, VI, _mm256_loadu_pd(p + j)));
        _mm256_storeu_pd(p + j + 4, _mm256_fmadd_pd(a1, VI, _mm256_loadu_pd(p + j + 4)));
    }
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, _mm256_add_pd(s0, s1));
    double s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; j < len; ++j) {
        const double a0 = a[j] - pvi * pw[j] - pwi * pv[j];
        a[j] = a0;
        s += a0 * v[j];
        p[j] += a0 * vi;
    }
    return s;
}

using FusedRowFn = double (*)(double *, const double *, const double *, const double *, double *, int, double, double, double);

struct Tridiagonal {
    std::vector<double> d, e;  // diagonal (n), off-diagonal (n − 1)
    std::vector<double> tau;   // reflector k is I − tau[k]·u uᵀ, u stored in row k's upper triangle
};

// Reduces the lower triangle of a (n × n, row-major; overwritten) to T = Qᵀ a Q. The vector of
// reflector k (support k+1…n−1, leading 1) is left in a[k][k+1…n−1], a contiguous row piece,
// so that the back-transformation streams it.
Tridiagonal tridiagonalise(std::vector<double> & a, int n, int threads, const std::atomic<bool> * cancel) {
    static const FusedRowFn fused = cpu_has_avx2_fma() ? fused_row_avx2 : fused_row_generic;
    const size_t N = static_cast<size_t>(n);
    Tridiagonal t;
    t.d.assign(N, 0.0);
    t.e.assign(N > 0 ? N - 1 : 0, 0.0);
    t.tau.assign(N, 0.0);
    std::vector<double> col(N), next_col(N), v(N, 0.0), p(N, 0.0), pv(N, 0.0), pw(N, 0.0);
    // Each extra thread accumulates the scattered part of B·v privately; summed after the pass.
    std::vector<std::vector<double>> p_extra(static_cast<size_t>(std::max(0, threads - 1)), std::vector<double>(N, 0.0));
    for (size_t i = 0; i < N; ++i) col[i] = a[i * N];
    for (int k = 0; k + 2 < n; ++k) {
        if ((k & 63) == 0) check_cancel(cancel);
        const size_t s = static_cast<size_t>(k) + 1;
        t.d[k] = col[k];
        // Reflector mapping col[s…n) onto beta·e_s. Scaled so that the sum of squares cannot
        // overflow or underflow.
        double scale = 0;
        for (size_t i = s; i < N; ++i) scale = std::max(scale, std::fabs(col[i]));
        double tail = 0;
        if (scale > 0) {
            for (size_t i = s + 1; i < N; ++i) tail += (col[i] / scale) * (col[i] / scale);
        }
        const double alpha = col[s];
        std::fill(v.begin(), v.end(), 0.0);
        v[s] = 1.0;
        double tau = 0;
        if (tail == 0) {
            t.e[k] = alpha;
        } else {
            const double norm = scale * std::sqrt((alpha / scale) * (alpha / scale) + tail);
            const double beta = alpha >= 0 ? -norm : norm;
            tau = (beta - alpha) / beta;
            const double f = 1.0 / (alpha - beta);
            for (size_t i = s + 1; i < N; ++i) v[i] = col[i] * f;
            t.e[k] = beta;
        }
        t.tau[k] = tau;
        std::copy(v.begin() + s, v.end(), a.begin() + k * N + s);

        // Fused pass: apply step k−1's update to rows/columns ≥ s and accumulate p = B·v.
        // Threads take row ranges of equal triangle area.
        const size_t len = N - s;
        const int T = len >= 512 ? threads : 1;
        std::fill(p.begin(), p.end(), 0.0);
        run_parallel(T, [&](int th) {
            const size_t r0 = s + static_cast<size_t>(static_cast<double>(len) * std::sqrt(static_cast<double>(th) / T));
            const size_t r1 = th + 1 == T ? N : s + static_cast<size_t>(static_cast<double>(len) * std::sqrt(static_cast<double>(th + 1) / T));
            double * pt = th == 0 ? p.data() : p_extra[th - 1].data();
            if (th > 0) std::fill(pt + s, pt + N, 0.0);
            for (size_t i = r0; i < r1; ++i) {
                double * row = a.data() + i * N;
                const double pvi = pv[i], pwi = pw[i];
                double dot = fused(row + s, pv.data() + s, pw.data() + s, v.data() + s, pt + s, static_cast<int>(i - s), pvi, pwi, v[i]);
                const double aii = row[i] - 2.0 * pvi * pwi;
                row[i] = aii;
                dot += aii * v[i];
                pt[i] += dot;
                next_col[i] = row[s];
            }
        });
        for (int th = 1; th < T; ++th) {
            const double * pt = p_extra[th - 1].data();
            for (size_t i = s; i < N; ++i) p[i] += pt[i];
        }
        // w = tau·p − (tau²/2)(pᵀv)·v, so that H B H = B − v wᵀ − w vᵀ.
        double pv_dot = 0;
        for (size_t i = s; i < N; ++i) pv_dot += p[i] * v[i];
        const double K = 0.5 * tau * tau * pv_dot;
        std::fill(pw.begin(), pw.end(), 0.0);
        for (size_t i = s; i < N; ++i) pw[i] = tau * p[i] - K * v[i];
        std::copy(v.begin(), v.end(), pv.begin());
        // Column s brought fully up to date for the next step.
        for (size_t i = s; i < N; ++i) col[i] = next_col[i] - pv[i] * pw[s] - pw[i] * pv[s];
    }
    if (n == 1) {
        t.d[0] = a[0];
    } else {
        t.d[n - 2] = col[n - 2];
        t.e[n - 2] = col[n - 1];
        t.d[n - 1] = a[(N - 1) * N + (N - 1)] - 2.0 * pv[N - 1] * pw[N - 1];
    }
    return t;
}

// ---------------------------------------------------------------------------------------------
// Eigenvalues of an unreduced tridiagonal block by implicit symmetric QR with Wilkinson shifts
// (Givens bulge chase from the top; deflation from the bottom).

bool negligible(double e, double d0, double d1, double abs_tol) {
    const double ae = std::fabs(e);
    return ae <= kEps * (std::fabs(d0) + std::fabs(d1)) || ae <= abs_tol;
}

void qr_step(double * d, double * e, int lo, int hi) {
    const double a = d[hi - 1], b = e[hi - 1], c = d[hi];
    const double delta = 0.5 * (a - c);
    const double mu = c - b * b / (delta + std::copysign(std::hypot(delta, b), delta));
    double x = d[lo] - mu, z = e[lo];
    for (int k = lo; k < hi; ++k) {
        const double r = std::hypot(x, z);
        const double cs = r == 0 ? 1.0 : x / r, sn = r == 0 ? 0.0 : z / r;
        if (k > lo) e[k - 1] = r;
        const double dk = d[k], ek = e[k], dk1 = d[k + 1];
        d[k] = cs * cs * dk + 2.0 * cs * sn * ek + sn * sn * dk1;
        d[k + 1] = sn * sn * dk - 2.0 * cs * sn * ek + cs * cs * dk1;
        e[k] = cs * sn * (dk1 - dk) + (cs * cs - sn * sn) * ek;
        if (k + 1 < hi) {
            z = sn * e[k + 1];
            e[k + 1] *= cs;
            x = e[k];
        }
    }
}

// Eigenvalues of the block d[lo…hi] / e[lo…hi−1], appended to out.
void block_eigenvalues(const std::vector<double> & diag, const std::vector<double> & off, int lo, int hi, double abs_tol, std::vector<double> & out) {
    std::vector<double> d(diag.begin() + lo, diag.begin() + hi + 1), e(off.begin() + lo, off.begin() + hi);
    e.push_back(0.0);
    hi -= lo;
    lo = 0;
    int end = hi;
    long budget = 60L * (hi - lo + 1);
    while (end > lo) {
        if (negligible(e[end - 1], d[end - 1], d[end], abs_tol)) {
            e[end - 1] = 0;
            --end;
            continue;
        }
        int start = end - 1;
        while (start > lo && !negligible(e[start - 1], d[start - 1], d[start], abs_tol)) --start;
        if (start > lo) e[start - 1] = 0;
        if (--budget < 0) throw GraftError("the tridiagonal eigenvalue iteration did not converge");
        qr_step(d.data(), e.data(), start, end);
    }
    for (int i = lo; i <= hi; ++i) out.push_back(d[i]);
}

// ---------------------------------------------------------------------------------------------
// Inverse iteration on one unreduced block T (length L): (T − λI) y = x by Gaussian
// elimination with partial pivoting (U has two superdiagonals). Pivots below pivmin are
// raised to it, which is what makes the exactly singular case (λ an exact eigenvalue) usable.

struct ShiftedLu {
    std::vector<double> u0, u1, u2, mult;
    std::vector<uint8_t> swapped;
};

void factor_shifted(const double * d, const double * e, int L, double lambda, double pivmin, ShiftedLu & f) {
    f.u0.assign(L, 0.0);
    f.u1.assign(L, 0.0);
    f.u2.assign(L, 0.0);
    f.mult.assign(L, 0.0);
    f.swapped.assign(L, 0);
    double diag = d[0] - lambda, sup = L > 1 ? e[0] : 0.0;
    for (int k = 0; k + 1 < L; ++k) {
        const double sub = e[k];
        const double next_diag = d[k + 1] - lambda, next_sup = k + 2 < L ? e[k + 1] : 0.0;
        if (std::fabs(diag) >= std::fabs(sub)) {
            if (std::fabs(diag) < pivmin) diag = diag < 0 ? -pivmin : pivmin;
            const double m = sub / diag;
            f.u0[k] = diag;
            f.u1[k] = sup;
            f.u2[k] = 0;
            f.mult[k] = m;
            diag = next_diag - m * sup;
            sup = next_sup;
        } else {
            const double m = diag / sub;
            f.u0[k] = sub;
            f.u1[k] = next_diag;
            f.u2[k] = next_sup;
            f.mult[k] = m;
            f.swapped[k] = 1;
            diag = sup - m * next_diag;
            sup = -m * next_sup;
        }
    }
    if (std::fabs(diag) < pivmin) diag = diag < 0 ? -pivmin : pivmin;
    f.u0[L - 1] = diag;
}

// Solves in place; rescales freely (the caller normalises), since several tiny pivots in a
// row would otherwise overflow.
void solve_shifted(const ShiftedLu & f, double * y, int L) {
    for (int k = 0; k + 1 < L; ++k) {
        if (f.swapped[k]) std::swap(y[k], y[k + 1]);
        y[k + 1] -= f.mult[k] * y[k];
    }
    constexpr double big = 1e150;
    for (int k = L - 1; k >= 0; --k) {
        double s = y[k];
        if (k + 1 < L) s -= f.u1[k] * y[k + 1];
        if (k + 2 < L) s -= f.u2[k] * y[k + 2];
        double x = s / f.u0[k];
        if (!(std::fabs(x) < big)) {
            // Shrink everything computed so far and every right-hand side still to come.
            for (int i = 0; i < L; ++i) y[i] /= big;
            x = (s / big) / f.u0[k];
        }
        y[k] = x;
    }
}

void axpy(double alpha, const double * x, double * y, int n) {
    for (int k = 0; k < n; ++k) y[k] += alpha * x[k];
}

// Scales to unit length; returns the length before.
double normalise(double * x, int n) {
    double m = 0;
    for (int k = 0; k < n; ++k) m = std::max(m, std::fabs(x[k]));
    if (m == 0) return 0;
    for (int k = 0; k < n; ++k) x[k] /= m;
    const double norm = std::sqrt(dot(x, x, n));
    for (int k = 0; k < n; ++k) x[k] /= norm;
    return norm * m;
}

// A deterministic start vector per eigenvalue (xorshift), so that results are reproducible.
void random_fill(double * x, int n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
    for (int k = 0; k < n; ++k) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[k] = static_cast<double>(s >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0;
    }
}

// Orthogonalises the group's vectors against `prev` (streamed once, each applied to every
// group vector before the next, i.e. modified Gram–Schmidt), then among themselves.
// Returns the smallest fraction of length any group vector kept.
double orthogonalise(const std::vector<double *> & prev, const std::vector<double *> & group, int L) {
    std::vector<double> before(group.size());
    for (size_t g = 0; g < group.size(); ++g) before[g] = std::sqrt(dot(group[g], group[g], L));
    for (const double * q : prev) {
        for (double * y : group) axpy(-dot(q, y, L), q, y, L);
    }
    double kept = 1.0;
    for (size_t g = 0; g < group.size(); ++g) {
        for (size_t h = 0; h < g; ++h) axpy(-dot(group[h], group[g], L), group[h], group[g], L);
        double norm = normalise(group[g], L);
        if (norm == 0) {
            // Entirely in the span of the others: restart from another direction.
            random_fill(group[g], L, 0x5EEDULL + g);
            normalise(group[g], L);
        }
        kept = std::min(kept, before[g] > 0 ? norm / before[g] : 0.0);
    }
    return kept;
}

// ---------------------------------------------------------------------------------------------
// Back-transformation z ← Q z = H_0 H_1 ⋯ H_{n−3} z for a few vectors at a time: the reflectors
// (half the matrix) are streamed once per group of vectors, while the group stays in cache.

constexpr int kBackGroup = 8;

template <int NB>
void apply_reflector_generic(const double * u, double tau, double * const * z, size_t off, int len) {
    double s[NB];
    for (int r = 0; r < NB; ++r) s[r] = tau * dot(u, z[r] + off, len);
    for (int r = 0; r < NB; ++r) axpy(-s[r], u, z[r] + off, len);
}

template <int NB>
__attribute__((target("avx2,fma"))) void apply_reflector_avx2(const double * u, double tau, double * const * z, size_t off, int len) {
    __m256d acc[NB];
    for (int r = 0; r < NB; ++r) acc[r] = _mm256_setzero_pd();
    int j = 0;
    for (; j + 4 <= len; j += 4) {
        const __m256d uj = _mm256_loadu_pd(u + j);
        for (int r = 0; r < NB; ++r) acc[r] = _mm256_fmadd_pd(uj, _mm256_loadu_pd(z[r] + off + j), acc[r]);
    }
    double s[NB];
    for (int r = 0; r < NB; ++r) {
        alignas(32) double lanes[4];
        _mm256_store_pd(lanes, acc[r]);
        double t = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
        for (int k = j; k < len; ++k) t += u[k] * z[r][off + k];
        s[r] = -tau * t;
    }
    for (int r = 0; r < NB; ++r) {
        const __m256d S = _mm256_set1_pd(s[r]);
        double * zr = z[r] + off;
        int k = 0;
        for (; k + 4 <= len; k += 4) _mm256_storeu_pd(zr + k, _mm256_fmadd_pd(S, _mm256_loadu_pd(u + k), _mm256_loadu_pd(zr + k)));
        for (; k < len; ++k) zr[k] += s[r] * u[k];
    }
}

template <int NB>
void back_transform_group(const std::vector<double> & a, const std::vector<double> & tau, int n, double * const * z) {
    static const bool avx2 = cpu_has_avx2_fma();
    const size_t N = static_cast<size_t>(n);
    for (int k = n - 3; k >= 0; --k) {
        if (tau[k] == 0) continue;
        const size_t off = static_cast<size_t>(k) + 1;
        const double * u = a.data() + k * N + off;
        const int len = n - k - 1;
        if (avx2) apply_reflector_avx2<NB>(u, tau[k], z, off, len);
        else apply_reflector_generic<NB>(u, tau[k], z, off, len);
    }
}

void back_transform(const std::vector<double> & a, const std::vector<double> & tau, int n, double * rows, int count, int threads,
                    const std::atomic<bool> * cancel) {
    const size_t N = static_cast<size_t>(n);
    const int groups = (count + kBackGroup - 1) / kBackGroup;
    run_parallel(std::max(1, std::min(threads, groups)), [&](int th) {
      for (int r0 = th * kBackGroup; r0 < count; r0 += threads * kBackGroup) {
        check_cancel(cancel);
        double * z[kBackGroup];
        const int nb = std::min(kBackGroup, count - r0);
        for (int r = 0; r < nb; ++r) z[r] = rows + static_cast<size_t>(r0 + r) * N;
        if (nb == kBackGroup) {
            back_transform_group<kBackGroup>(a, tau, n, z);
        } else {
            for (int r = 0; r < nb; ++r) back_transform_group<1>(a, tau, n, z + r);
        }
      }
    });
}

}  // namespace

void check_symmetric(const double * a, int n) {
    const size_t N = static_cast<size_t>(n);
    double largest = 0;
    for (size_t i = 0; i < N * N; ++i) {
        if (!std::isfinite(a[i])) {
            throw GraftError("the matrix has a non-finite value (" + std::to_string(a[i]) + ") at row " + std::to_string(i / N) + ", column " +
                             std::to_string(i % N));
        }
        largest = std::max(largest, std::fabs(a[i]));
    }
    // Moments accumulated in double are symmetric to rounding; anything larger is a wrong input.
    const double tol = 1e-9 * largest;
    for (size_t i = 0; i < N; ++i) {
        for (size_t j = 0; j < i; ++j) {
            const double x = a[i * N + j], y = a[j * N + i];
            if (std::fabs(x - y) > tol) {
                throw GraftError("the matrix is not symmetric: entry (" + std::to_string(i) + ", " + std::to_string(j) + ") is " + std::to_string(x) + " but (" +
                                 std::to_string(j) + ", " + std::to_string(i) + ") is " + std::to_string(y));
            }
        }
    }
}

NullSpaceSplit null_space_split(const double * input, int n, double threshold, int threads, const std::atomic<bool> * cancel) {
    if (n < 1) throw GraftError("the matrix size must be at least 1, got " + std::to_string(n));
    threads = std::max(1, std::min(threads, 256));
    if (!std::isfinite(threshold)) throw GraftError("the threshold must be a finite number");
    const size_t N = static_cast<size_t>(n);
    std::vector<double> a(N * N);
    for (size_t i = 0; i < N; ++i) {
        for (size_t j = 0; j < i; ++j) a[i * N + j] = 0.5 * (input[i * N + j] + input[j * N + i]);
        a[i * N + i] = input[i * N + i];
    }
    Tridiagonal t = tridiagonalise(a, n, threads, cancel);
    check_cancel(cancel);

    double tnorm = 0;
    for (int i = 0; i < n; ++i) {
        tnorm = std::max(tnorm, std::fabs(t.d[i]) + (i > 0 ? std::fabs(t.e[i - 1]) : 0.0) + (i + 1 < n ? std::fabs(t.e[i]) : 0.0));
    }
    // Off-diagonals this small are a perturbation within the reduction's own backward error;
    // splitting there keeps the inverse-iteration blocks (and their clusters) small.
    const double abs_tol = kEps * tnorm;
    std::vector<int> block_start{0};
    for (int i = 0; i + 1 < n; ++i) {
        if (negligible(t.e[i], t.d[i], t.d[i + 1], abs_tol)) {
            t.e[i] = 0;
            block_start.push_back(i + 1);
        }
    }
    block_start.push_back(n);

    struct Eig {
        double value;
        int block;
    };
    std::vector<Eig> eigs;
    eigs.reserve(N);
    std::vector<double> values;
    for (size_t b = 0; b + 1 < block_start.size(); ++b) {
        check_cancel(cancel);
        values.clear();
        const int lo = block_start[b], hi = block_start[b + 1] - 1;
        block_eigenvalues(t.d, t.e, lo, hi, abs_tol, values);
        for (double x : values) eigs.push_back({x, static_cast<int>(b)});
    }
    std::sort(eigs.begin(), eigs.end(), [](const Eig & x, const Eig & y) { return x.value < y.value; });

    NullSpaceSplit out;
    out.eigenvalues.resize(N);
    int below = 0;
    for (size_t i = 0; i < N; ++i) {
        out.eigenvalues[i] = eigs[i].value;
        if (eigs[i].value < threshold) ++below;
    }
    out.below = below <= n - below;
    out.count = out.below ? below : n - below;
    out.vectors.assign(static_cast<size_t>(out.count) * N, 0.0);
    if (out.count == 0) return out;
    const int first = out.below ? 0 : below;

    // Selected eigenvalues per block, ascending; row r of the output is the r-th selected.
    std::vector<std::vector<int>> rows_of_block(block_start.size() - 1);
    for (int r = 0; r < out.count; ++r) rows_of_block[eigs[first + r].block].push_back(r);

    const double pivmin = std::max(kEps * tnorm, std::numeric_limits<double>::min());
    // Vectors of eigenvalues farther apart than this come out of inverse iteration orthogonal
    // to ~eps·‖T‖/gap ≤ 1e-12 already; each vector is explicitly orthogonalised only against
    // those of eigenvalues within it (a sliding window, not a chained cluster: the dense small
    // end of a moments spectrum would otherwise chain into one cluster of thousands).
    const double window = 1e-4 * tnorm;
    constexpr size_t kGroup = 32;
    ShiftedLu lu;
    for (size_t b = 0; b + 1 < block_start.size(); ++b) {
        const auto & rows = rows_of_block[b];
        if (rows.empty()) continue;
        const int lo = block_start[b], L = block_start[b + 1] - lo;
        const double * d = t.d.data() + lo;
        const double * e = t.e.data() + lo;
        auto seg = [&](size_t g) { return out.vectors.data() + static_cast<size_t>(rows[g]) * N + lo; };
        auto lambda = [&](size_t g) { return eigs[first + rows[g]].value; };
        if (L == 1) {
            for (size_t g = 0; g < rows.size(); ++g) seg(g)[0] = 1.0;
            continue;
        }
        // Vectors are made a group at a time so that the window's vectors are streamed once per
        // group rather than once per vector.
        size_t w0 = 0;
        for (size_t g0 = 0; g0 < rows.size(); g0 += kGroup) {
            check_cancel(cancel);
            const size_t g1 = std::min(rows.size(), g0 + kGroup);
            while (w0 < g0 && lambda(g0) - lambda(w0) > window) ++w0;
            std::vector<double *> prev, group;
            for (size_t g = w0; g < g0; ++g) prev.push_back(seg(g));
            for (size_t g = g0; g < g1; ++g) {
                group.push_back(seg(g));
                random_fill(group.back(), L, static_cast<uint64_t>(rows[g]) + 1);
            }
            // Two solves make each vector's own eigendirection dominate any other by (gap/eps)²;
            // for (near-)equal eigenvalues they only push it into their common subspace, where
            // the orthogonalisation picks a new direction. That step also copies the previous
            // vectors' small errors (components outside the cluster) into the new one, divided by
            // the length it kept, which would compound along a large cluster; a further solve
            // removes them again, and the final Gram–Schmidt (twice) then keeps nearly all the length.
            auto solve_group = [&] {
                for (size_t g = g0; g < g1; ++g) {
                    factor_shifted(d, e, L, lambda(g), pivmin, lu);
                    solve_shifted(lu, group[g - g0], L);
                    normalise(group[g - g0], L);
                }
            };
            solve_group();
            solve_group();
            orthogonalise(prev, group, L);
            for (int attempt = 0;; ++attempt) {
                solve_group();
                const double kept = orthogonalise(prev, group, L);
                if (kept > 0.5 || attempt == 3) break;
            }
            orthogonalise(prev, group, L);
        }
    }
    back_transform(a, t.tau, n, out.vectors.data(), out.count, threads, cancel);
    return out;
}

}  // namespace graft
