#include "linalg.h"

#include <cmath>
#include <string>

#include "cpu_features.h"
#include "errors.h"

namespace graft {

namespace {

double dot_generic(const double * a, const double * b, int n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += a[k] * b[k];
        s1 += a[k + 1] * b[k + 1];
        s2 += a[k + 2] * b[k + 2];
        s3 += a[k + 3] * b[k + 3];
    }
    for (; k < n; ++k) s0 += a[k] * b[k];
    return (s0 + s1) + (s2 + s3);
}

__attribute__((target("avx2,fma"))) double dot_avx2(const double * a, const double * b, int n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        s0 += a[k] * b[k];
        s1 += a[k + 1] * b[k + 1];
        s2 += a[k + 2] * b[k + 2];
        s3 += a[k + 3] * b[k + 3];
        s4 += a[k + 4] * b[k + 4];
        s5 += a[k + 5] * b[k + 5];
        s6 += a[k + 6] * b[k + 6];
        s7 += a[k + 7] * b[k + 7];
    }
    for (; k < n; ++k) s0 += a[k] * b[k];
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}

using DotFn = double (*)(const double *, const double *, int);

DotFn pick_dot() { return cpu_has_avx2_fma() ? dot_avx2 : dot_generic; }

}  // namespace

double dot(const double * a, const double * b, int n) {
    static const DotFn chosen = pick_dot();
    return chosen(a, b, n);
}

Cholesky::Cholesky(const std::vector<double> & a, int n, double ridge) : n_(n), l_(static_cast<size_t>(n) * n, 0.0) {
    static const DotFn dot = pick_dot();
    if (n <= 0 || a.size() != static_cast<size_t>(n) * n) throw GraftError("Cholesky needs an n × n matrix");
    const size_t N = static_cast<size_t>(n);
    // Row-oriented (Cholesky–Crout): every inner product runs over two contiguous row prefixes.
    for (size_t i = 0; i < N; ++i) {
        double * li = l_.data() + i * N;
        for (size_t j = 0; j <= i; ++j) {
            const double * lj = l_.data() + j * N;
            const double s = a[i * N + j] + (i == j ? ridge : 0.0) - dot(li, lj, static_cast<int>(j));
            if (i == j) {
                if (!(s > 0) || !std::isfinite(s)) {
                    throw GraftError("the matrix is not positive definite (pivot " + std::to_string(i) + " of " + std::to_string(n) +
                                     " is " + std::to_string(s) + "): second moments of too few tokens are singular; use a larger corpus");
                }
                li[i] = std::sqrt(s);
            } else {
                li[j] = s / lj[j];
            }
        }
    }
}

std::vector<double> Cholesky::solve(const std::vector<double> & b) const {
    const size_t N = static_cast<size_t>(n_);
    if (b.size() != N) throw GraftError("the right-hand side has " + std::to_string(b.size()) + " values, not " + std::to_string(n_));
    std::vector<double> y(N), x(N);
    for (size_t i = 0; i < N; ++i) {  // L y = b
        double s = b[i];
        for (size_t k = 0; k < i; ++k) s -= l_[i * N + k] * y[k];
        y[i] = s / l_[i * N + i];
    }
    for (size_t i = N; i-- > 0;) {  // Lᵀ x = y
        double s = y[i];
        for (size_t k = i + 1; k < N; ++k) s -= l_[k * N + i] * x[k];
        x[i] = s / l_[i * N + i];
    }
    return x;
}

double Cholesky::log_determinant() const {
    double s = 0;
    for (int i = 0; i < n_; ++i) s += 2.0 * std::log(l_[static_cast<size_t>(i) * n_ + i]);
    return s;
}

}  // namespace graft
