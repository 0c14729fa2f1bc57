// Streaming-multiprocessor counts of NVIDIA data-centre GPU models, keyed by the product name that
// nvidia-smi prints, for ceems_compute_unit_gpu_sm_count of whole (non-MIG) GPUs.

/** Model-name patterns and their SM counts; the first match wins, so specific variants come first. */
const table: [RegExp, number][] = [
  [/\bH100\b.*\bPCIe\b/i, 114],
  [/\bH100\b/i, 132],
  [/\bH200\b/i, 132],
  [/\bGH200\b/i, 132],
  [/\bH800\b/i, 132],
  [/\bB200\b/i, 148],
  [/\bA100\b/i, 108],
  [/\bA800\b/i, 108],
  [/\bA30\b/i, 56],
  [/\bA40\b/i, 84],
  [/\bA10\b/i, 72],
  [/\bA16\b/i, 40],
  [/\bA2\b/i, 10],
  [/\bL40S?\b/i, 142],
  [/\bL4\b/i, 58],
  [/\bV100\b/i, 80],
  [/\bP100\b/i, 56],
  [/\bT4\b/i, 40],
  [/\bRTX A6000\b/i, 84],
];

/** SM count of an NVIDIA model from its product name, or 0 when the model is not known. */
export function smCountForModel(productName: string): number {
  for (const [re, n] of table) if (re.test(productName)) return n;
  return 0;
}
