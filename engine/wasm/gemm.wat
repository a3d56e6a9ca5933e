;; Float32 matrix products C = A @ B for the engine's linear layers on the wasm backend
;; (engine/gemm.ts), built to engine/wasm/gemm.wasm by scripts/build-attention-wasm.ts.
;;
;; Register tiles of 4 rows x 8 columns (eight 4-lane accumulators; larger tiles ran slower,
;; likely past the 16 vector registers V8 has on x86-64), one fused multiply-add a lane per step
;; (f32x4.relaxed_madd, relaxed SIMD: fused where the processor has FMA, as on x86-64 with FMA3
;; and arm64). Columns go in panels of 8, the outer loop, so a panel of B (K x 8) stays in the
;; first-level cache while every row block of A passes over it; rows left over after the blocks
;; of 4 go one at a time. N must be a multiple of 8 and K at least 1.
(module
  (import "env" "memory" (memory 1))
  ;; C[4 x 8] = A[4 x K] @ B[K x 8] at byte addresses a, b, c; lda, ldb, ldc: row strides in bytes.
  (func $rows4 (param $a i32) (param $b i32) (param $c i32) (param $K i32) (param $lda i32) (param $ldb i32) (param $ldc i32)
    (local $s v128) (local $b0 v128) (local $b1 v128) (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128) (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128) (local $a2 i32) (local $a3 i32)
    (local.set $a2 (i32.shl (local.get $lda) (i32.const 1)))
    (local.set $a3 (i32.add (local.get $a2) (local.get $lda)))
    (loop $k
      (local.set $b0 (v128.load align=4 (local.get $b)))
      (local.set $b1 (v128.load offset=16 align=4 (local.get $b)))
      (local.set $s (v128.load32_splat align=4 (local.get $a)))
      (local.set $c00 (f32x4.relaxed_madd (local.get $s) (local.get $b0) (local.get $c00)))
      (local.set $c01 (f32x4.relaxed_madd (local.get $s) (local.get $b1) (local.get $c01)))
      (local.set $s (v128.load32_splat align=4 (i32.add (local.get $a) (local.get $lda))))
      (local.set $c10 (f32x4.relaxed_madd (local.get $s) (local.get $b0) (local.get $c10)))
      (local.set $c11 (f32x4.relaxed_madd (local.get $s) (local.get $b1) (local.get $c11)))
      (local.set $s (v128.load32_splat align=4 (i32.add (local.get $a) (local.get $a2))))
      (local.set $c20 (f32x4.relaxed_madd (local.get $s) (local.get $b0) (local.get $c20)))
      (local.set $c21 (f32x4.relaxed_madd (local.get $s) (local.get $b1) (local.get $c21)))
      (local.set $s (v128.load32_splat align=4 (i32.add (local.get $a) (local.get $a3))))
      (local.set $c30 (f32x4.relaxed_madd (local.get $s) (local.get $b0) (local.get $c30)))
      (local.set $c31 (f32x4.relaxed_madd (local.get $s) (local.get $b1) (local.get $c31)))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (br_if $k (local.tee $K (i32.sub (local.get $K) (i32.const 1)))))
    (local.set $a2 (i32.shl (local.get $ldc) (i32.const 1)))
    (local.set $a3 (i32.add (local.get $a2) (local.get $ldc)))
    (v128.store align=4 (local.get $c) (local.get $c00))
    (v128.store offset=16 align=4 (local.get $c) (local.get $c01))
    (v128.store align=4 (i32.add (local.get $c) (local.get $ldc)) (local.get $c10))
    (v128.store offset=16 align=4 (i32.add (local.get $c) (local.get $ldc)) (local.get $c11))
    (v128.store align=4 (i32.add (local.get $c) (local.get $a2)) (local.get $c20))
    (v128.store offset=16 align=4 (i32.add (local.get $c) (local.get $a2)) (local.get $c21))
    (v128.store align=4 (i32.add (local.get $c) (local.get $a3)) (local.get $c30))
    (v128.store offset=16 align=4 (i32.add (local.get $c) (local.get $a3)) (local.get $c31))
  )

  ;; C[1 x 8] = A[1 x K] @ B[K x 8] at byte addresses a, b, c; lda, ldb, ldc: row strides in bytes.
  (func $rows1 (param $a i32) (param $b i32) (param $c i32) (param $K i32) (param $lda i32) (param $ldb i32) (param $ldc i32)
    (local $s v128) (local $b0 v128) (local $b1 v128) (local $c00 v128) (local $c01 v128)
    (loop $k
      (local.set $b0 (v128.load align=4 (local.get $b)))
      (local.set $b1 (v128.load offset=16 align=4 (local.get $b)))
      (local.set $s (v128.load32_splat align=4 (local.get $a)))
      (local.set $c00 (f32x4.relaxed_madd (local.get $s) (local.get $b0) (local.get $c00)))
      (local.set $c01 (f32x4.relaxed_madd (local.get $s) (local.get $b1) (local.get $c01)))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (br_if $k (local.tee $K (i32.sub (local.get $K) (i32.const 1)))))
    (v128.store align=4 (local.get $c) (local.get $c00))
    (v128.store offset=16 align=4 (local.get $c) (local.get $c01))
  )

;; C[M x 8] = A[M x K] @ one panel of B (K x 8 at b, row stride ldb); strides in bytes.
  (func $panel (param $a i32) (param $b i32) (param $c i32) (param $M i32) (param $K i32) (param $lda i32) (param $ldb i32) (param $ldc i32)
    (local $i i32) (local $m4 i32)
    (local.set $m4 (i32.and (local.get $M) (i32.const -4)))
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u (local.get $i) (local.get $m4)))
      (call $rows4 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $lda))) (local.get $b)
        (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc))) (local.get $K) (local.get $lda) (local.get $ldb) (local.get $ldc))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $rows)))
    (block $rest_done (loop $rest
      (br_if $rest_done (i32.ge_u (local.get $i) (local.get $M)))
      (call $rows1 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $lda))) (local.get $b)
        (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc))) (local.get $K) (local.get $lda) (local.get $ldb) (local.get $ldc))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rest)))
  )

  ;; Copies one panel of B (K x 8 at src, row stride ldb in bytes) to lie contiguous at dst.
  (func $copy_panel (param $src i32) (param $dst i32) (param $K i32) (param $ldb i32)
    (loop $copy
      (v128.store align=4 (local.get $dst) (v128.load align=4 (local.get $src)))
      (v128.store offset=16 align=4 (local.get $dst) (v128.load offset=16 align=4 (local.get $src)))
      (local.set $src (i32.add (local.get $src) (local.get $ldb)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
      (br_if $copy (local.tee $K (i32.sub (local.get $K) (i32.const 1)))))
  )

  ;; C[M x N] = A[M x K] @ B[K x N]; addresses in bytes, row strides (lda, ldb, ldc) in elements.
  ;; pack: 0, or the byte address of room for K x 8 floats, where each panel of B is first copied
  ;; to lie contiguous (B's rows are wide: a panel walk down them strides over cache sets).
  (func (export "gemm") (param $a i32) (param $b i32) (param $c i32) (param $M i32) (param $K i32) (param $N i32)
                        (param $lda i32) (param $ldb i32) (param $ldc i32) (param $pack i32)
    (local $j i32) (local $bj i32)
    (local.set $lda (i32.shl (local.get $lda) (i32.const 2)))
    (local.set $ldb (i32.shl (local.get $ldb) (i32.const 2)))
    (local.set $ldc (i32.shl (local.get $ldc) (i32.const 2)))
    (block $done (loop $cols
      (br_if $done (i32.ge_u (local.get $j) (local.get $N)))
      (local.set $bj (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
      (if (local.get $pack)
        (then
          (call $copy_panel (local.get $bj) (local.get $pack) (local.get $K) (local.get $ldb))
          (call $panel (local.get $a) (local.get $pack) (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2)))
            (local.get $M) (local.get $K) (local.get $lda) (i32.const 32) (local.get $ldc)))
        (else
          (call $panel (local.get $a) (local.get $bj) (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2)))
            (local.get $M) (local.get $K) (local.get $lda) (local.get $ldb) (local.get $ldc))))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $cols)))
  )

  ;; B[K x N] (row stride ldb, in elements) copied panel after panel to dst: panel j / 8 at
  ;; dst + j * K * 4 bytes, each K x 8 contiguous; what gemm_packed reads.
  (func (export "pack") (param $b i32) (param $dst i32) (param $K i32) (param $N i32) (param $ldb i32)
    (local $j i32)
    (local.set $ldb (i32.shl (local.get $ldb) (i32.const 2)))
    (block $done (loop $cols
      (br_if $done (i32.ge_u (local.get $j) (local.get $N)))
      (call $copy_panel (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2)))
        (i32.add (local.get $dst) (i32.shl (i32.mul (local.get $j) (local.get $K)) (i32.const 2))) (local.get $K) (local.get $ldb))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $cols)))
  )

  ;; C[M x N] = A[M x K] @ B, with B as `pack` left it at bp; row strides lda, ldc in elements.
  (func (export "gemm_packed") (param $a i32) (param $bp i32) (param $c i32) (param $M i32) (param $K i32) (param $N i32)
                               (param $lda i32) (param $ldc i32)
    (local $j i32)
    (local.set $lda (i32.shl (local.get $lda) (i32.const 2)))
    (local.set $ldc (i32.shl (local.get $ldc) (i32.const 2)))
    (block $done (loop $cols
      (br_if $done (i32.ge_u (local.get $j) (local.get $N)))
      (call $panel (local.get $a) (i32.add (local.get $bp) (i32.shl (i32.mul (local.get $j) (local.get $K)) (i32.const 2)))
        (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $M) (local.get $K) (local.get $lda) (i32.const 32) (local.get $ldc))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $cols)))
  )
)
