#include "model_check.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace tinyhil {
namespace {

constexpr uint64_t kMaxElements = uint64_t{1} << 32;

// Bits per element of the tensor types whose size is fixed; 0 for the others (strings,
// resources, variants, types TFLM does not know), whose data is not checked against the shape.
unsigned BitsPerElement(tflite::TensorType type) {
  switch (type) {
    case tflite::TensorType_INT4:
    case tflite::TensorType_UINT4:
      return 4;
    case tflite::TensorType_INT2:
      return 2;
    case tflite::TensorType_UINT8:
    case tflite::TensorType_INT8:
    case tflite::TensorType_BOOL:
    case tflite::TensorType_FLOAT8_E4M3FN:
    case tflite::TensorType_FLOAT8_E5M2:
      return 8;
    case tflite::TensorType_FLOAT16:
    case tflite::TensorType_BFLOAT16:
    case tflite::TensorType_INT16:
    case tflite::TensorType_UINT16:
      return 16;
    case tflite::TensorType_FLOAT32:
    case tflite::TensorType_INT32:
    case tflite::TensorType_UINT32:
      return 32;
    case tflite::TensorType_INT64:
    case tflite::TensorType_UINT64:
    case tflite::TensorType_FLOAT64:
    case tflite::TensorType_COMPLEX64:
      return 64;
    case tflite::TensorType_COMPLEX128:
      return 128;
    default:
      return 0;
  }
}

// The zero points a quantized tensor of `type` can hold (false for types without a fixed range).
bool ZeroPointRange(tflite::TensorType type, int64_t* low, int64_t* high) {
  switch (type) {
    case tflite::TensorType_INT4:
      *low = -8, *high = 7;
      return true;
    case tflite::TensorType_INT8:
      *low = -128, *high = 127;
      return true;
    case tflite::TensorType_UINT8:
      *low = 0, *high = 255;
      return true;
    case tflite::TensorType_INT16:
      *low = -32768, *high = 32767;
      return true;
    default:
      return false;
  }
}

template <typename T>
uint32_t Size(const flatbuffers::Vector<T>* v) {
  return v == nullptr ? 0 : v->size();
}

// Checks one tensor of subgraph `s`: its buffer index, its shape, its constant data against the
// shape, and its quantization arrays (as TFLM copies them: only when scale and zero point are
// both there).
bool CheckTensor(const tflite::Tensor* t, uint32_t i, uint32_t s,
                 const flatbuffers::Vector<flatbuffers::Offset<tflite::Buffer>>* buffers,
                 char* error, size_t error_len) {
  const uint32_t b = t->buffer();
  if (b >= Size(buffers)) {
    snprintf(error, error_len,
             "model: tensor %lu of subgraph %lu uses buffer %lu; the model has %lu",
             static_cast<unsigned long>(i), static_cast<unsigned long>(s),
             static_cast<unsigned long>(b), static_cast<unsigned long>(Size(buffers)));
    return false;
  }
  const auto* shape = t->shape();
  uint64_t elements = 1;
  for (uint32_t d = 0; d < Size(shape); ++d) {
    const int32_t n = shape->Get(d);
    if (n < 0) {
      snprintf(error, error_len, "model: tensor %lu of subgraph %lu has dimension %lu of size %ld",
               static_cast<unsigned long>(i), static_cast<unsigned long>(s),
               static_cast<unsigned long>(d), static_cast<long>(n));
      return false;
    }
    // capped at 2^32, far above any buffer a flatbuffer (< 2 GiB) holds: no overflow below
    elements = std::min(elements * static_cast<uint64_t>(n), kMaxElements);
  }
  const auto* data = buffers->Get(b)->data();
  const unsigned bits = BitsPerElement(t->type());
  if (data != nullptr && data->size() > 0 && bits > 0) {
    const uint64_t need = (elements * bits + 7) / 8;
    if (data->size() < need) {
      snprintf(error, error_len,
               "model: tensor %lu of subgraph %lu needs %llu bytes; its buffer %lu holds %lu",
               static_cast<unsigned long>(i), static_cast<unsigned long>(s),
               static_cast<unsigned long long>(need), static_cast<unsigned long>(b),
               static_cast<unsigned long>(data->size()));
      return false;
    }
  }
  const tflite::QuantizationParameters* q = t->quantization();
  if (q == nullptr || Size(q->scale()) == 0 || Size(q->zero_point()) == 0) return true;
  const uint32_t scales = q->scale()->size(), zeros = q->zero_point()->size();
  if (zeros != 1 && zeros != scales) {
    snprintf(error, error_len,
             "model: tensor %lu of subgraph %lu has %lu quantization scales and %lu zero points",
             static_cast<unsigned long>(i), static_cast<unsigned long>(s),
             static_cast<unsigned long>(scales), static_cast<unsigned long>(zeros));
    return false;
  }
  for (uint32_t k = 0; k < scales; ++k) {
    const float scale = q->scale()->Get(k);
    if (!(std::isfinite(scale) && scale > 0)) {
      snprintf(error, error_len,
               "model: quantization scale %lu of tensor %lu of subgraph %lu is not a positive "
               "finite number",
               static_cast<unsigned long>(k), static_cast<unsigned long>(i),
               static_cast<unsigned long>(s));
      return false;
    }
  }
  int64_t low = 0, high = 0;
  if (ZeroPointRange(t->type(), &low, &high)) {
    for (uint32_t k = 0; k < zeros; ++k) {
      const int64_t zero = q->zero_point()->Get(k);
      if (zero < low || zero > high) {
        snprintf(
            error, error_len,
            "model: zero point %lu of tensor %lu of subgraph %lu is %lld, outside %s's %lld..%lld",
            static_cast<unsigned long>(k), static_cast<unsigned long>(i),
            static_cast<unsigned long>(s), static_cast<long long>(zero),
            tflite::EnumNameTensorType(t->type()), static_cast<long long>(low),
            static_cast<long long>(high));
        return false;
      }
    }
  }
  return true;
}

// Each index of `list` names a tensor of the subgraph (-1, an omitted optional input, where
// `optional`); `what` says whose list it is, for the error.
bool CheckIndices(const flatbuffers::Vector<int32_t>* list, uint32_t tensors, bool optional,
                  const char* what, char* error, size_t error_len) {
  for (uint32_t k = 0; k < Size(list); ++k) {
    const int32_t index = list->Get(k);
    if ((index == -1 && optional) || (index >= 0 && static_cast<uint32_t>(index) < tensors)) {
      continue;
    }
    snprintf(error, error_len, "model: %s tensor %ld; the subgraph has %lu", what,
             static_cast<long>(index), static_cast<unsigned long>(tensors));
    return false;
  }
  return true;
}

}  // namespace

bool CheckModelStructure(const tflite::Model* model, char* error, size_t error_len) {
  const auto* subgraphs = model->subgraphs();
  if (Size(subgraphs) == 0) {
    snprintf(error, error_len, "model: no subgraphs");
    return false;
  }
  const uint32_t codes = Size(model->operator_codes());
  const auto* buffers = model->buffers();
  char what[64];
  for (uint32_t s = 0; s < subgraphs->size(); ++s) {
    const tflite::SubGraph* sg = subgraphs->Get(s);
    const uint32_t tensors = Size(sg->tensors());
    if (s == 0 && (Size(sg->inputs()) == 0 || Size(sg->outputs()) == 0)) {
      // the firmware reports input 0 and output 0 of the first subgraph
      snprintf(error, error_len, "model: subgraph 0 has no %s",
               Size(sg->inputs()) == 0 ? "inputs" : "outputs");
      return false;
    }
    snprintf(what, sizeof(what), "an input of subgraph %lu is", static_cast<unsigned long>(s));
    if (!CheckIndices(sg->inputs(), tensors, false, what, error, error_len)) return false;
    snprintf(what, sizeof(what), "an output of subgraph %lu is", static_cast<unsigned long>(s));
    if (!CheckIndices(sg->outputs(), tensors, false, what, error, error_len)) return false;
    for (uint32_t i = 0; i < tensors; ++i) {
      if (!CheckTensor(sg->tensors()->Get(i), i, s, buffers, error, error_len)) return false;
    }
    const auto* operators = sg->operators();
    for (uint32_t j = 0; j < Size(operators); ++j) {
      const tflite::Operator* op = operators->Get(j);
      if (op->opcode_index() >= codes) {
        snprintf(error, error_len,
                 "model: operator %lu of subgraph %lu has op code %lu; the model has %lu",
                 static_cast<unsigned long>(j), static_cast<unsigned long>(s),
                 static_cast<unsigned long>(op->opcode_index()), static_cast<unsigned long>(codes));
        return false;
      }
      const unsigned long jl = j, sl = s;
      snprintf(what, sizeof(what), "operator %lu of subgraph %lu reads", jl, sl);
      if (!CheckIndices(op->inputs(), tensors, true, what, error, error_len)) return false;
      snprintf(what, sizeof(what), "operator %lu of subgraph %lu writes", jl, sl);
      if (!CheckIndices(op->outputs(), tensors, false, what, error, error_len)) return false;
      snprintf(what, sizeof(what), "operator %lu of subgraph %lu has intermediate", jl, sl);
      if (!CheckIndices(op->intermediates(), tensors, false, what, error, error_len)) return false;
    }
  }
  return true;
}

}  // namespace tinyhil
