// What the flatbuffers verifier lets through and TFLM reads unchecked: indices (tensors, buffers,
// op codes), constant data shorter than its tensor, quantization arrays that disagree. One pass
// over a verified model, before TFLM sees it (plugins/firmware_tools/model_check.py is its twin
// on the Python virtual board: the same checks, in the same order, with the same words).
#ifndef TINYHIL_MODEL_CHECK_H_
#define TINYHIL_MODEL_CHECK_H_

#include <cstddef>

#include "tensorflow/lite/schema/schema_generated.h"

namespace tinyhil {

// True when TFLM can read `model` (already through tflite::VerifyModelBuffer) without an index
// out of range; otherwise false with the protocol error ("model: …") in `error`.
bool CheckModelStructure(const tflite::Model* model, char* error, size_t error_len);

}  // namespace tinyhil

#endif  // TINYHIL_MODEL_CHECK_H_
