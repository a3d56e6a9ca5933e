;; Matrix products for attention, with 128-bit SIMD (4 float32 lanes); the strided and indexed
;; row copies behind the wasm backend's Concat, Slice and row GatherV2 (bulk memory); and the
;; exponentials of logits less their row's maximum that sampling draws from.
;; Addresses are byte offsets into the imported memory (the wasm backend's own heap, so tensors are
;; read and written in place, or a memory of the caller's); sizes count float32 elements.
(module
  (import "env" "memory" (memory 1))

  ;; C = A B for one matrix: C [M, N] row-major, B(k, j) read at b + 4 * (k * sb + j) (row-major
  ;; [K, N] with sb = N, or the first N columns of wider rows), A(i, k) read at a + 4 * (i * sai + k * sak),
  ;; so A may be row-major [M, K] (sai = K, sak = 1) or transposed, stored [K, M] (sai = 1, sak = M).
  ;; Rows go two at a time where they can, so each vector of B read serves both (attention's B, the
  ;; keys or values, is the larger operand: at decoding it is read once for the query heads that share
  ;; it, not once per head); each row's columns go 16 at a time (four vector accumulators a row), then
  ;; 4, then 1. Every element sums its K products in order, with a separate multiply and add, so
  ;; neither the row pairing nor the column grouping changes it.
  (func (export "mm")
    (param $a i32) (param $b i32) (param $c i32)
    (param $M i32) (param $K i32) (param $N i32) (param $sai i32) (param $sak i32) (param $sb i32)
    (local $i i32) (local $j i32) (local $a0 i32) (local $cp i32) (local $rowA i32) (local $rowB i32) (local $stepA i32) (local $rowC i32)
    (local.set $rowA (i32.shl (local.get $sai) (i32.const 2)))
    (local.set $rowB (i32.shl (local.get $sb) (i32.const 2)))
    (local.set $stepA (i32.shl (local.get $sak) (i32.const 2)))
    (local.set $rowC (i32.shl (local.get $N) (i32.const 2)))
    (local.set $cp (local.get $c))
    (local.set $a0 (local.get $a))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $i) (local.get $M)))
        (local.set $j (i32.const 0))
        (if (i32.lt_u (i32.add (local.get $i) (i32.const 1)) (local.get $M))
          (then
            ;; rows i and i + 1, 16 columns at a time, then each row's remaining columns
            (block $p16_done
              (loop $p16
                (br_if $p16_done (i32.gt_u (i32.add (local.get $j) (i32.const 16)) (local.get $N)))
                (call $pair16 (local.get $a0) (i32.add (local.get $a0) (local.get $rowA))
                  (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2)))
                  (i32.add (local.get $cp) (i32.shl (local.get $j) (i32.const 2)))
                  (i32.add (i32.add (local.get $cp) (local.get $rowC)) (i32.shl (local.get $j) (i32.const 2)))
                  (local.get $K) (local.get $stepA) (local.get $rowB))
                (local.set $j (i32.add (local.get $j) (i32.const 16)))
                (br $p16)))
            (call $tail (local.get $a0) (local.get $b) (local.get $cp) (local.get $j) (local.get $N) (local.get $K) (local.get $stepA) (local.get $rowB))
            (call $tail (i32.add (local.get $a0) (local.get $rowA)) (local.get $b) (i32.add (local.get $cp) (local.get $rowC))
              (local.get $j) (local.get $N) (local.get $K) (local.get $stepA) (local.get $rowB))
            (local.set $i (i32.add (local.get $i) (i32.const 2)))
            (local.set $a0 (i32.add (local.get $a0) (i32.shl (local.get $rowA) (i32.const 1))))
            (local.set $cp (i32.add (local.get $cp) (i32.shl (local.get $rowC) (i32.const 1)))))
          (else
            ;; the last row of an odd count
            (block $c16_done
              (loop $c16
                (br_if $c16_done (i32.gt_u (i32.add (local.get $j) (i32.const 16)) (local.get $N)))
                (call $row16 (local.get $a0) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2)))
                  (i32.add (local.get $cp) (i32.shl (local.get $j) (i32.const 2))) (local.get $K) (local.get $stepA) (local.get $rowB))
                (local.set $j (i32.add (local.get $j) (i32.const 16)))
                (br $c16)))
            (call $tail (local.get $a0) (local.get $b) (local.get $cp) (local.get $j) (local.get $N) (local.get $K) (local.get $stepA) (local.get $rowB))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (local.set $a0 (i32.add (local.get $a0) (local.get $rowA)))
            (local.set $cp (i32.add (local.get $cp) (local.get $rowC)))))
        (br $rows)))
  )

  ;; Two rows' 16 columns: c0[0..16) = A row at a0 times B's 16 columns at bp, c1 the same for a1.
  (func $pair16 (param $a0 i32) (param $a1 i32) (param $bp i32) (param $c0 i32) (param $c1 i32)
    (param $k i32) (param $stepA i32) (param $rowB i32)
    (local $s v128) (local $t v128) (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128)
    (local $y0 v128) (local $y1 v128) (local $y2 v128) (local $y3 v128)
    (block $k_done
      (loop $ks
        (br_if $k_done (i32.eqz (local.get $k)))
        (local.set $b0 (v128.load align=4 (local.get $bp)))
        (local.set $b1 (v128.load offset=16 align=4 (local.get $bp)))
        (local.set $b2 (v128.load offset=32 align=4 (local.get $bp)))
        (local.set $b3 (v128.load offset=48 align=4 (local.get $bp)))
        (local.set $s (f32x4.splat (f32.load (local.get $a0))))
        (local.set $t (f32x4.splat (f32.load (local.get $a1))))
        (local.set $x0 (f32x4.add (local.get $x0) (f32x4.mul (local.get $s) (local.get $b0))))
        (local.set $x1 (f32x4.add (local.get $x1) (f32x4.mul (local.get $s) (local.get $b1))))
        (local.set $x2 (f32x4.add (local.get $x2) (f32x4.mul (local.get $s) (local.get $b2))))
        (local.set $x3 (f32x4.add (local.get $x3) (f32x4.mul (local.get $s) (local.get $b3))))
        (local.set $y0 (f32x4.add (local.get $y0) (f32x4.mul (local.get $t) (local.get $b0))))
        (local.set $y1 (f32x4.add (local.get $y1) (f32x4.mul (local.get $t) (local.get $b1))))
        (local.set $y2 (f32x4.add (local.get $y2) (f32x4.mul (local.get $t) (local.get $b2))))
        (local.set $y3 (f32x4.add (local.get $y3) (f32x4.mul (local.get $t) (local.get $b3))))
        (local.set $a0 (i32.add (local.get $a0) (local.get $stepA)))
        (local.set $a1 (i32.add (local.get $a1) (local.get $stepA)))
        (local.set $bp (i32.add (local.get $bp) (local.get $rowB)))
        (local.set $k (i32.sub (local.get $k) (i32.const 1)))
        (br $ks)))
    (v128.store align=4 (local.get $c0) (local.get $x0))
    (v128.store offset=16 align=4 (local.get $c0) (local.get $x1))
    (v128.store offset=32 align=4 (local.get $c0) (local.get $x2))
    (v128.store offset=48 align=4 (local.get $c0) (local.get $x3))
    (v128.store align=4 (local.get $c1) (local.get $y0))
    (v128.store offset=16 align=4 (local.get $c1) (local.get $y1))
    (v128.store offset=32 align=4 (local.get $c1) (local.get $y2))
    (v128.store offset=48 align=4 (local.get $c1) (local.get $y3))
  )

  ;; One row's 16 columns: c[0..16) = A row at a0 times B's 16 columns at bp.
  (func $row16 (param $a0 i32) (param $bp i32) (param $c i32) (param $k i32) (param $stepA i32) (param $rowB i32)
    (local $s v128) (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128)
    (block $k_done
      (loop $ks
        (br_if $k_done (i32.eqz (local.get $k)))
        (local.set $s (f32x4.splat (f32.load (local.get $a0))))
        (local.set $x0 (f32x4.add (local.get $x0) (f32x4.mul (local.get $s) (v128.load align=4 (local.get $bp)))))
        (local.set $x1 (f32x4.add (local.get $x1) (f32x4.mul (local.get $s) (v128.load offset=16 align=4 (local.get $bp)))))
        (local.set $x2 (f32x4.add (local.get $x2) (f32x4.mul (local.get $s) (v128.load offset=32 align=4 (local.get $bp)))))
        (local.set $x3 (f32x4.add (local.get $x3) (f32x4.mul (local.get $s) (v128.load offset=48 align=4 (local.get $bp)))))
        (local.set $a0 (i32.add (local.get $a0) (local.get $stepA)))
        (local.set $bp (i32.add (local.get $bp) (local.get $rowB)))
        (local.set $k (i32.sub (local.get $k) (i32.const 1)))
        (br $ks)))
    (v128.store align=4 (local.get $c) (local.get $x0))
    (v128.store offset=16 align=4 (local.get $c) (local.get $x1))
    (v128.store offset=32 align=4 (local.get $c) (local.get $x2))
    (v128.store offset=48 align=4 (local.get $c) (local.get $x3))
  )

  ;; One row's columns from j on (fewer than 16 left): 4 at a time, then one at a time; c is the row's start.
  (func $tail (param $a0 i32) (param $b i32) (param $c i32) (param $j i32) (param $N i32)
    (param $K i32) (param $stepA i32) (param $rowB i32)
    (local $k i32) (local $ap i32) (local $bp i32) (local $x0 v128) (local $f f32)
    (block $c4_done
      (loop $c4
        (br_if $c4_done (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $N)))
        (local.set $x0 (v128.const i32x4 0 0 0 0))
        (local.set $ap (local.get $a0))
        (local.set $bp (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $k (local.get $K))
        (block $k4_done
          (loop $k4
            (br_if $k4_done (i32.eqz (local.get $k)))
            (local.set $x0 (f32x4.add (local.get $x0)
              (f32x4.mul (f32x4.splat (f32.load (local.get $ap))) (v128.load align=4 (local.get $bp)))))
            (local.set $ap (i32.add (local.get $ap) (local.get $stepA)))
            (local.set $bp (i32.add (local.get $bp) (local.get $rowB)))
            (local.set $k (i32.sub (local.get $k) (i32.const 1)))
            (br $k4)))
        (v128.store align=4 (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $x0))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $c4)))
    (block $c1_done
      (loop $c1
        (br_if $c1_done (i32.ge_u (local.get $j) (local.get $N)))
        (local.set $f (f32.const 0))
        (local.set $ap (local.get $a0))
        (local.set $bp (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $k (local.get $K))
        (block $k1_done
          (loop $k1
            (br_if $k1_done (i32.eqz (local.get $k)))
            (local.set $f (f32.add (local.get $f) (f32.mul (f32.load (local.get $ap)) (f32.load (local.get $bp)))))
            (local.set $ap (i32.add (local.get $ap) (local.get $stepA)))
            (local.set $bp (i32.add (local.get $bp) (local.get $rowB)))
            (local.set $k (i32.sub (local.get $k) (i32.const 1)))
            (br $k1)))
        (f32.store (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $f))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $c1)))
  )

  ;; dst [C, R] = transpose of src [R, C], both row-major.
  (func (export "transpose") (param $src i32) (param $dst i32) (param $R i32) (param $C i32)
    (local $r i32) (local $c i32) (local $sp i32) (local $dp i32) (local $rowD i32)
    (local.set $rowD (i32.shl (local.get $R) (i32.const 2)))
    (local.set $sp (local.get $src))
    (local.set $r (i32.const 0))
    (block $r_done
      (loop $rs
        (br_if $r_done (i32.ge_u (local.get $r) (local.get $R)))
        (local.set $dp (i32.add (local.get $dst) (i32.shl (local.get $r) (i32.const 2))))
        (local.set $c (local.get $C))
        (block $c_done
          (loop $cs
            (br_if $c_done (i32.eqz (local.get $c)))
            (f32.store (local.get $dp) (f32.load (local.get $sp)))
            (local.set $sp (i32.add (local.get $sp) (i32.const 4)))
            (local.set $dp (i32.add (local.get $dp) (local.get $rowD)))
            (local.set $c (i32.sub (local.get $c) (i32.const 1)))
            (br $cs)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rs)))
  )

  ;; rows strided copies: row r of `bytes` bytes goes from src + r * srcStride to dst + r * dstStride
  ;; (one input's part of every outer row of a concatenation).
  (func (export "copy_rows")
    (param $dst i32) (param $dstStride i32) (param $src i32) (param $srcStride i32) (param $bytes i32) (param $rows i32)
    (block $done
      (loop $rs
        (br_if $done (i32.eqz (local.get $rows)))
        (memory.copy (local.get $dst) (local.get $src) (local.get $bytes))
        (local.set $dst (i32.add (local.get $dst) (local.get $dstStride)))
        (local.set $src (i32.add (local.get $src) (local.get $srcStride)))
        (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
        (br $rs)))
  )

  ;; n rows of `bytes` bytes picked by index: row i of dst is row idx[i] of src (idx: n int32 at
  ;; byte address idx, already checked to lie in range).
  (func (export "gather_rows")
    (param $dst i32) (param $src i32) (param $idx i32) (param $n i32) (param $bytes i32)
    (block $done
      (loop $rs
        (br_if $done (i32.eqz (local.get $n)))
        (memory.copy (local.get $dst)
          (i32.add (local.get $src) (i32.mul (i32.load (local.get $idx)) (local.get $bytes)))
          (local.get $bytes))
        (local.set $dst (i32.add (local.get $dst) (local.get $bytes)))
        (local.set $idx (i32.add (local.get $idx) (i32.const 4)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $rs)))
  )

  ;; exp(x) for x <= 0 in float32, four lanes: x = n ln2 + r with n = nearest(x log2 e) and
  ;; |r| <= ln2 / 2 (ln2 split in two so n ln2 is exact), exp(r) by its Taylor series to r^7
  ;; (truncation below 6e-9 relative, under float32's rounding), times 2^n built in the exponent
  ;; bits. Below -87 (2^n would leave the normal range) the result is 0.
  (func $exp4 (param $x v128) (result v128)
    (local $n v128) (local $r v128) (local $p v128)
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $x) (v128.const f32x4 1.44269504 1.44269504 1.44269504 1.44269504))))
    (local.set $r (f32x4.sub (f32x4.sub (local.get $x)
      (f32x4.mul (local.get $n) (v128.const f32x4 0.693145751953125 0.693145751953125 0.693145751953125 0.693145751953125)))
      (f32x4.mul (local.get $n) (v128.const f32x4 1.428606765330187e-06 1.428606765330187e-06 1.428606765330187e-06 1.428606765330187e-06))))
    (local.set $p (v128.const f32x4 1.98412698e-04 1.98412698e-04 1.98412698e-04 1.98412698e-04))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.38888889e-03 1.38888889e-03 1.38888889e-03 1.38888889e-03)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 8.33333333e-03 8.33333333e-03 8.33333333e-03 8.33333333e-03)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 4.16666667e-02 4.16666667e-02 4.16666667e-02 4.16666667e-02)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 0.166666667 0.166666667 0.166666667 0.166666667)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 0.5 0.5 0.5 0.5)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1 1 1 1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1 1 1 1)))
    (v128.and
      (f32x4.mul (local.get $p)
        (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (v128.const i32x4 127 127 127 127)) (i32.const 23)))
      (f32x4.ge (local.get $x) (v128.const f32x4 -87 -87 -87 -87)))
  )

  ;; dst[r, i] = exp(src[r, i] - max_i src[r, i]) for `rows` rows of V float32 (the exponentials
  ;; softmax sampling walks). A row's last V mod 4 elements go through the same four-lane code
  ;; (loaded one by one), so every element gets the same arithmetic wherever it lies.
  (func (export "exp_shifted") (param $src i32) (param $dst i32) (param $rows i32) (param $V i32)
    (local $i i32) (local $end i32) (local $vend i32) (local $m v128) (local $mx f32) (local $e v128)
    (block $rows_done
      (loop $rs
        (br_if $rows_done (i32.eqz (local.get $rows)))
        (local.set $end (i32.add (local.get $src) (i32.shl (local.get $V) (i32.const 2))))
        (local.set $vend (i32.add (local.get $src) (i32.shl (i32.and (local.get $V) (i32.const -4)) (i32.const 2))))
        ;; the row's maximum
        (local.set $m (v128.const f32x4 -inf -inf -inf -inf))
        (local.set $i (local.get $src))
        (block $m_done
          (loop $ms
            (br_if $m_done (i32.ge_u (local.get $i) (local.get $vend)))
            (local.set $m (f32x4.max (local.get $m) (v128.load (local.get $i))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $ms)))
        (local.set $mx (f32.max (f32.max (f32x4.extract_lane 0 (local.get $m)) (f32x4.extract_lane 1 (local.get $m)))
                                (f32.max (f32x4.extract_lane 2 (local.get $m)) (f32x4.extract_lane 3 (local.get $m)))))
        (block $t_done
          (loop $ts
            (br_if $t_done (i32.ge_u (local.get $i) (local.get $end)))
            (local.set $mx (f32.max (local.get $mx) (f32.load (local.get $i))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $ts)))
        (local.set $m (f32x4.splat (local.get $mx)))
        ;; the exponentials, four at a time
        (local.set $i (local.get $src))
        (block $e_done
          (loop $es
            (br_if $e_done (i32.ge_u (local.get $i) (local.get $vend)))
            (v128.store (local.get $dst) (call $exp4 (f32x4.sub (v128.load (local.get $i)) (local.get $m))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
            (br $es)))
        ;; the rest one by one, through lane 0
        (block $r_done
          (loop $rr
            (br_if $r_done (i32.ge_u (local.get $i) (local.get $end)))
            (local.set $e (call $exp4 (f32x4.sub (f32x4.splat (f32.load (local.get $i))) (local.get $m))))
            (f32.store (local.get $dst) (f32x4.extract_lane 0 (local.get $e)))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
            (br $rr)))
        (local.set $src (local.get $end))
        (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
        (br $rs)))
  )

  ;; Rotary embedding of `rows` rows of `heads` heads of d (even) float32 each, cos and sin [rows, d]
  ;; shared by a row's heads: out = x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1] (the
  ;; halves of d), each product and the sum rounded to float32 in that order (what tfjs's Mul, Mul
  ;; and Add give, with the rotation's product exact). Four lanes at a time while d / 2 allows.
  (func (export "rope") (param $x i32) (param $cos i32) (param $sin i32) (param $out i32)
    (param $rows i32) (param $heads i32) (param $d i32)
    (local $half i32) (local $hb i32) (local $vhalf i32) (local $r i32) (local $h i32) (local $j i32)
    (local $xp i32) (local $op i32) (local $cp i32) (local $sp i32)
    (local $x1 v128) (local $x2 v128)
    (local $a f32) (local $b f32)
    (local.set $half (i32.shr_u (local.get $d) (i32.const 1)))
    (local.set $hb (i32.shl (local.get $half) (i32.const 2)))
    (local.set $vhalf (i32.and (local.get $half) (i32.const -4)))
    (local.set $r (i32.const 0))
    (block $rows_done
      (loop $rs
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $h (i32.const 0))
        (block $heads_done
          (loop $hs
            (br_if $heads_done (i32.ge_u (local.get $h) (local.get $heads)))
            (local.set $j (i32.const 0))
            (block $v_done
              (loop $vs
                (br_if $v_done (i32.ge_u (local.get $j) (local.get $vhalf)))
                (local.set $xp (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2))))
                (local.set $op (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))))
                (local.set $cp (i32.add (local.get $cos) (i32.shl (local.get $j) (i32.const 2))))
                (local.set $sp (i32.add (local.get $sin) (i32.shl (local.get $j) (i32.const 2))))
                (local.set $x1 (v128.load align=4 (local.get $xp)))
                (local.set $x2 (v128.load align=4 (i32.add (local.get $xp) (local.get $hb))))
                (v128.store align=4 (local.get $op)
                  (f32x4.sub (f32x4.mul (local.get $x1) (v128.load align=4 (local.get $cp)))
                             (f32x4.mul (local.get $x2) (v128.load align=4 (local.get $sp)))))
                (v128.store align=4 (i32.add (local.get $op) (local.get $hb))
                  (f32x4.add (f32x4.mul (local.get $x2) (v128.load align=4 (i32.add (local.get $cp) (local.get $hb))))
                             (f32x4.mul (local.get $x1) (v128.load align=4 (i32.add (local.get $sp) (local.get $hb))))))
                (local.set $j (i32.add (local.get $j) (i32.const 4)))
                (br $vs)))
            (block $s_done
              (loop $ss
                (br_if $s_done (i32.ge_u (local.get $j) (local.get $half)))
                (local.set $xp (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2))))
                (local.set $op (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))))
                (local.set $cp (i32.add (local.get $cos) (i32.shl (local.get $j) (i32.const 2))))
                (local.set $sp (i32.add (local.get $sin) (i32.shl (local.get $j) (i32.const 2))))
                (local.set $a (f32.load (local.get $xp)))
                (local.set $b (f32.load (i32.add (local.get $xp) (local.get $hb))))
                (f32.store (local.get $op)
                  (f32.sub (f32.mul (local.get $a) (f32.load (local.get $cp))) (f32.mul (local.get $b) (f32.load (local.get $sp)))))
                (f32.store (i32.add (local.get $op) (local.get $hb))
                  (f32.add (f32.mul (local.get $b) (f32.load (i32.add (local.get $cp) (local.get $hb))))
                           (f32.mul (local.get $a) (f32.load (i32.add (local.get $sp) (local.get $hb))))))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $ss)))
            (local.set $x (i32.add (local.get $x) (i32.shl (local.get $d) (i32.const 2))))
            (local.set $out (i32.add (local.get $out) (i32.shl (local.get $d) (i32.const 2))))
            (local.set $h (i32.add (local.get $h) (i32.const 1)))
            (br $hs)))
        (local.set $cos (i32.add (local.get $cos) (i32.shl (local.get $d) (i32.const 2))))
        (local.set $sin (i32.add (local.get $sin) (i32.shl (local.get $d) (i32.const 2))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rs)))
  )
  ;; RMSNorm of `rows` rows of C float32: out = (x * r) * w with r = 1 / sqrt(mean(x^2) + eps),
  ;; with the roundings of the tfjs kernels it stands for (Square, Mean, Add, Rsqrt, Mul, Mul): each
  ;; square rounded to float32 and added to the row's float32 sum in order from 0, the sum divided
  ;; by C, eps added, the square root and its reciprocal each rounded to float32, then the two
  ;; products. The products go four lanes at a time (each element's arithmetic is the same).
  (func (export "rms_norm") (param $x i32) (param $w i32) (param $out i32) (param $rows i32) (param $C i32) (param $eps f32)
    (local $p i32) (local $end i32) (local $vend i32) (local $wp i32) (local $sum f32) (local $v f32) (local $r f32) (local $rv v128)
    (block $rows_done
      (loop $rs
        (br_if $rows_done (i32.eqz (local.get $rows)))
        (local.set $end (i32.add (local.get $x) (i32.shl (local.get $C) (i32.const 2))))
        (local.set $vend (i32.add (local.get $x) (i32.shl (i32.and (local.get $C) (i32.const -4)) (i32.const 2))))
        ;; the sum of squares, in order
        (local.set $sum (f32.const 0))
        (local.set $p (local.get $x))
        (block $s_done
          (loop $ss
            (br_if $s_done (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $v (f32.load (local.get $p)))
            (local.set $sum (f32.add (local.get $sum) (f32.mul (local.get $v) (local.get $v))))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (br $ss)))
        (local.set $r (f32.div (f32.const 1)
          (f32.sqrt (f32.add (f32.div (local.get $sum) (f32.convert_i32_u (local.get $C))) (local.get $eps)))))
        (local.set $rv (f32x4.splat (local.get $r)))
        ;; (x * r) * w
        (local.set $p (local.get $x))
        (local.set $wp (local.get $w))
        (block $v_done
          (loop $vs
            (br_if $v_done (i32.ge_u (local.get $p) (local.get $vend)))
            (v128.store align=4 (local.get $out)
              (f32x4.mul (f32x4.mul (v128.load align=4 (local.get $p)) (local.get $rv)) (v128.load align=4 (local.get $wp))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (local.set $wp (i32.add (local.get $wp) (i32.const 16)))
            (local.set $out (i32.add (local.get $out) (i32.const 16)))
            (br $vs)))
        (block $t_done
          (loop $ts
            (br_if $t_done (i32.ge_u (local.get $p) (local.get $end)))
            (f32.store (local.get $out) (f32.mul (f32.mul (f32.load (local.get $p)) (local.get $r)) (f32.load (local.get $wp))))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (local.set $wp (i32.add (local.get $wp) (i32.const 4)))
            (local.set $out (i32.add (local.get $out) (i32.const 4)))
            (br $ts)))
        (local.set $x (local.get $end))
        (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
        (br $rs)))
  )
  ;; c[r, j] += b[j] for `rows` rows of N float32 (b = c's own rows: a residual, with rows = 1 and N
  ;; the whole size; b a bias row, with rows the rows of c): each sum rounded to float32 as tfjs's
  ;; Add rounds it. Four lanes at a time, then one by one.
  (func (export "add_rows") (param $c i32) (param $b i32) (param $rows i32) (param $N i32)
    (local $p i32) (local $q i32) (local $end i32) (local $vend i32)
    (block $rows_done
      (loop $rs
        (br_if $rows_done (i32.eqz (local.get $rows)))
        (local.set $end (i32.add (local.get $c) (i32.shl (local.get $N) (i32.const 2))))
        (local.set $vend (i32.add (local.get $c) (i32.shl (i32.and (local.get $N) (i32.const -4)) (i32.const 2))))
        (local.set $p (local.get $c))
        (local.set $q (local.get $b))
        (block $v_done
          (loop $vs
            (br_if $v_done (i32.ge_u (local.get $p) (local.get $vend)))
            (v128.store align=4 (local.get $p) (f32x4.add (v128.load align=4 (local.get $p)) (v128.load align=4 (local.get $q))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (local.set $q (i32.add (local.get $q) (i32.const 16)))
            (br $vs)))
        (block $t_done
          (loop $ts
            (br_if $t_done (i32.ge_u (local.get $p) (local.get $end)))
            (f32.store (local.get $p) (f32.add (f32.load (local.get $p)) (f32.load (local.get $q))))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (local.set $q (i32.add (local.get $q) (i32.const 4)))
            (br $ts)))
        (local.set $c (local.get $end))
        (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
        (br $rs)))
  )

  ;; out = (g * s) * u over n float32 (SwiGLU's silu(gate) * up with s = sigmoid(gate)), each
  ;; product rounded to float32 as tfjs's two Muls round them.
  (func (export "gated") (param $g i32) (param $s i32) (param $u i32) (param $out i32) (param $n i32)
    (local $end i32) (local $vend i32)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $vend (i32.add (local.get $out) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $v_done
      (loop $vs
        (br_if $v_done (i32.ge_u (local.get $out) (local.get $vend)))
        (v128.store align=4 (local.get $out)
          (f32x4.mul (f32x4.mul (v128.load align=4 (local.get $g)) (v128.load align=4 (local.get $s))) (v128.load align=4 (local.get $u))))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $s (i32.add (local.get $s) (i32.const 16)))
        (local.set $u (i32.add (local.get $u) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 16)))
        (br $vs)))
    (block $t_done
      (loop $ts
        (br_if $t_done (i32.ge_u (local.get $out) (local.get $end)))
        (f32.store (local.get $out) (f32.mul (f32.mul (f32.load (local.get $g)) (f32.load (local.get $s))) (f32.load (local.get $u))))
        (local.set $g (i32.add (local.get $g) (i32.const 4)))
        (local.set $s (i32.add (local.get $s) (i32.const 4)))
        (local.set $u (i32.add (local.get $u) (i32.const 4)))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (br $ts)))
  )
  ;; The ids of n float32 logits at src from the largest to the smallest, equal ones by lower id
  ;; (engine/sampling.ts `rankDescending`): each logit's bits (-0 as +0) made an order-preserving
  ;; key, inverted, then a stable radix sort of (key, id) in three passes of 11 bits, keys and ids
  ;; at ka/ia and kb/ib in turn (n each), counts: room for 2048 int32. Returns the address of the ids.
  (func (export "rank_desc") (param $src i32) (param $n i32) (param $ka i32) (param $kb i32) (param $ia i32) (param $ib i32) (param $counts i32) (result i32)
    (local $i i32) (local $bits i32) (local $k i32) (local $shift i32) (local $d i32) (local $at i32) (local $c i32) (local $slot i32) (local $t i32)
    (block $keys_done
      (loop $keys
        (br_if $keys_done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $bits (i32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))
        (if (i32.eq (local.get $bits) (i32.const 0x80000000)) (then (local.set $bits (i32.const 0))))
        (i32.store (i32.add (local.get $ka) (i32.shl (local.get $i) (i32.const 2)))
          (select (local.get $bits) (i32.and (i32.xor (local.get $bits) (i32.const -1)) (i32.const 0x7fffffff))
            (i32.lt_s (local.get $bits) (i32.const 0))))
        (i32.store (i32.add (local.get $ia) (i32.shl (local.get $i) (i32.const 2))) (local.get $i))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $keys)))
    (block $passes_done
      (loop $passes
        (br_if $passes_done (i32.ge_u (local.get $shift) (i32.const 32)))
        (memory.fill (local.get $counts) (i32.const 0) (i32.const 8192))
        (local.set $i (i32.const 0))
        (block $h_done
          (loop $h
            (br_if $h_done (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $slot (i32.add (local.get $counts) (i32.shl (i32.and (i32.shr_u
              (i32.load (i32.add (local.get $ka) (i32.shl (local.get $i) (i32.const 2)))) (local.get $shift)) (i32.const 2047)) (i32.const 2))))
            (i32.store (local.get $slot) (i32.add (i32.load (local.get $slot)) (i32.const 1)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $h)))
        (local.set $d (i32.const 0))
        (local.set $at (i32.const 0))
        (block $p_done
          (loop $p
            (br_if $p_done (i32.ge_u (local.get $d) (i32.const 2048)))
            (local.set $slot (i32.add (local.get $counts) (i32.shl (local.get $d) (i32.const 2))))
            (local.set $c (i32.load (local.get $slot)))
            (i32.store (local.get $slot) (local.get $at))
            (local.set $at (i32.add (local.get $at) (local.get $c)))
            (local.set $d (i32.add (local.get $d) (i32.const 1)))
            (br $p)))
        (local.set $i (i32.const 0))
        (block $s_done
          (loop $s
            (br_if $s_done (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $k (i32.load (i32.add (local.get $ka) (i32.shl (local.get $i) (i32.const 2)))))
            (local.set $slot (i32.add (local.get $counts) (i32.shl (i32.and (i32.shr_u (local.get $k) (local.get $shift)) (i32.const 2047)) (i32.const 2))))
            (local.set $at (i32.load (local.get $slot)))
            (i32.store (local.get $slot) (i32.add (local.get $at) (i32.const 1)))
            (i32.store (i32.add (local.get $kb) (i32.shl (local.get $at) (i32.const 2))) (local.get $k))
            (i32.store (i32.add (local.get $ib) (i32.shl (local.get $at) (i32.const 2)))
              (i32.load (i32.add (local.get $ia) (i32.shl (local.get $i) (i32.const 2)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $s)))
        ;; the sorted keys and ids become the input of the next pass
        (local.set $t (local.get $ka)) (local.set $ka (local.get $kb)) (local.set $kb (local.get $t))
        (local.set $t (local.get $ia)) (local.set $ia (local.get $ib)) (local.set $ib (local.get $t))
        (local.set $shift (i32.add (local.get $shift) (i32.const 11)))
        (br $passes)))
    (local.get $ia)
  )
)
