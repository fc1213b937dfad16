#pragma once
// Spectral split of a symmetric positive semi-definite matrix at a threshold, for AlphaEdit's
// null-space projector P = Û Ûᵀ (Û: eigenvectors of C = E[k kᵀ] below the threshold). n is
// n_ff (up to ~14k), so this is the O(n³) route: Householder tridiagonalisation, eigenvalues
// of the tridiagonal matrix by implicit QR, and eigenvectors only for the smaller side of the
// threshold (inverse iteration, then the reflectors), since P = I − Ũ Ũᵀ works as well from
// the other side.
#include <atomic>
#include <cstddef>
#include <vector>

namespace graft {

struct NullSpaceSplit {
    std::vector<double> eigenvalues;  // all n, ascending
    bool below = true;                // the vectors are those with eigenvalue < threshold (else ≥)
    int count = 0;                    // number of vectors (rows of `vectors`)
    std::vector<double> vectors;      // count × n, row-major; row r belongs to the r-th eigenvalue of that side
};

// Checks a (n × n, row-major): finite and symmetric within a relative tolerance; throws
// GraftError saying which entry is wrong.
void check_symmetric(const double * a, int n);

// a is read only (lower and upper triangle are averaged). `threads` share the reduction's
// passes and the back-transformation. `cancel`, when set, makes the computation stop with a
// GraftError at the next checkpoint.
NullSpaceSplit null_space_split(const double * a, int n, double threshold, int threads = 1, const std::atomic<bool> * cancel = nullptr);

}  // namespace graft
