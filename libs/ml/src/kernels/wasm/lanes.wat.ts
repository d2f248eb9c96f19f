/**
 * The channel loop every memory-bound kernel here shares: `vector` over 4 floats at a time while a
 * whole v128 fits in $cBytes, then `scalar` for the C mod 4 tail. Both snippets address lane
 * offset $j (bytes); the caller declares $j and $cBytes as i32 locals.
 */
export function lanes(vector: string, scalar: string): string {
  return `
    i32.const 0  local.set $j
    block $vdone  loop $vnext
      local.get $j  i32.const 16  i32.add  local.get $cBytes  i32.gt_u  br_if $vdone
      ${vector}
      local.get $j  i32.const 16  i32.add  local.set $j  br $vnext
    end  end
    block $sdone  loop $snext
      local.get $j  local.get $cBytes  i32.ge_u  br_if $sdone
      ${scalar}
      local.get $j  i32.const 4  i32.add  local.set $j  br $snext
    end  end`;
}
