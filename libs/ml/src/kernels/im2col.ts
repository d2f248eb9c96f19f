import type { backend_util } from '@tensorflow/tfjs';

/**
 * im2col / col2im for NHWC 2-D convolutions: they turn both convolution gradients into one plain
 * matmul (the fast wasm path) plus one memory-bound copy. Any stride, padding (same / valid /
 * explicit, asymmetric) and dilation that tfjs' computeConv2DInfo describes is handled here.
 *
 * Layout: N = batch·outH·outW output pixels, P = kH·kW·inC patch entries; patch entry
 * p = (kh·kW + kw)·inC + ci, which is the row-major order of a [kH, kW, inC, outC] filter.
 */
export interface ConvGeometry {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  outC: number;
  kH: number;
  kW: number;
  strideH: number;
  strideW: number;
  dilH: number;
  dilW: number;
  padTop: number;
  padLeft: number;
}

export function convGeometry(info: backend_util.Conv2DInfo): ConvGeometry {
  if (info.dataFormat !== 'channelsLast') throw new Error('fast conv kernels: only NHWC (channelsLast) is supported');
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    outH: info.outHeight,
    outW: info.outWidth,
    outC: info.outChannels,
    kH: info.filterHeight,
    kW: info.filterWidth,
    strideH: info.strideHeight,
    strideW: info.strideWidth,
    dilH: info.dilationHeight,
    dilW: info.dilationWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/** Output columns [lo, hi) whose input column ow·stride + off lies inside [0, inW). */
function validRange(off: number, stride: number, inSize: number, outSize: number): [number, number] {
  const lo = off >= 0 ? 0 : Math.ceil(-off / stride);
  const hi = Math.min(outSize, Math.floor((inSize - 1 - off) / stride) + 1);
  return [Math.min(lo, outSize), Math.max(hi, Math.min(lo, outSize))];
}

/**
 * colT[p][n] = x[b, oh·sH + kh·dH − padTop, ow·sW + kw·dW − padLeft, ci] (0 in the padding):
 * the transposed im2col, [P, N], so that dW = colT · dy[N, outC] is a plain matmul.
 * Writes are sequential; reads stride by inC.
 */
export function im2colT(x: Float32Array, g: ConvGeometry, colT: Float32Array): void {
  const { batch, inH, inW, inC, outH, outW, kH, kW } = g;
  let o = 0;
  for (let kh = 0; kh < kH; kh++) {
    for (let kw = 0; kw < kW; kw++) {
      const colOff = kw * g.dilW - g.padLeft;
      const [lo, hi] = validRange(colOff, g.strideW, inW, outW);
      for (let ci = 0; ci < inC; ci++) {
        for (let b = 0; b < batch; b++) {
          for (let oh = 0; oh < outH; oh++) {
            const ih = oh * g.strideH + kh * g.dilH - g.padTop;
            if (ih < 0 || ih >= inH) {
              colT.fill(0, o, o + outW);
              o += outW;
              continue;
            }
            const rowBase = ((b * inH + ih) * inW + colOff) * inC + ci;
            const step = g.strideW * inC;
            if (lo > 0) colT.fill(0, o, o + lo);
            // [lo, hi) keeps the input column inside [0, inW): the read is in x.
            for (let ow = lo; ow < hi; ow++) colT[o + ow] = x[rowBase + ow * step]!;
            if (hi < outW) colT.fill(0, o + hi, o + outW);
            o += outW;
          }
        }
      }
    }
  }
}

/**
 * dx[b, ih, iw, ci] += dcol[n][p]: scatters the patch gradients dcol [N, P] = dy · Wᵀ back onto the
 * input (overlapping windows add up). dx must be zeroed by the caller.
 */
export function col2im(dcol: Float32Array, g: ConvGeometry, dx: Float32Array): void {
  const { batch, inH, inW, inC, outH, outW, kH, kW } = g;
  const P = kH * kW * inC;
  let src = 0;
  for (let b = 0; b < batch; b++) {
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++, src += P) {
        for (let kh = 0; kh < kH; kh++) {
          const ih = oh * g.strideH + kh * g.dilH - g.padTop;
          if (ih < 0 || ih >= inH) continue;
          for (let kw = 0; kw < kW; kw++) {
            const iw = ow * g.strideW + kw * g.dilW - g.padLeft;
            if (iw < 0 || iw >= inW) continue;
            const s = src + (kh * kW + kw) * inC;
            const d = ((b * inH + ih) * inW + iw) * inC;
            // ih, iw are inside the input (checked above) and s within the patch row of dcol.
            for (let ci = 0; ci < inC; ci++) dx[d + ci]! += dcol[s + ci]!;
          }
        }
      }
    }
  }
}
