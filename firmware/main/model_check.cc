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
  // TFLM counts a tensor's elements in an int and asserts each dimension is below INT_MAX over
  // the count before it (tflite::NumElements; the count stops at a 0)
  int64_t count = 1;
  for (uint32_t d = 0; d < Size(shape) && count > 0; ++d) {
    if (shape->Get(d) >= INT32_MAX / count) {
      snprintf(error, error_len,
               "model: tensor %lu of subgraph %lu has more elements than TFLM counts (2^31)",
               static_cast<unsigned long>(i), static_cast<unsigned long>(s));
      return false;
    }
    count *= shape->Get(d);
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

// How many inputs and outputs the kernel of each builtin op of ops.def reads: op_arity.def.
constexpr int kAny = 255;
struct Arity {
  tflite::BuiltinOperator op;
  uint8_t min_in, max_in, min_out, max_out;
};
constexpr Arity kArities[] = {
#define TINYHIL_ARITY(name, min_in, max_in, min_out, max_out) \
  {tflite::BuiltinOperator_##name, min_in, max_in, min_out, max_out},
#include "op_arity.def"
#undef TINYHIL_ARITY
};

// The positions of an op's weights among its inputs: TFLite's int8 quantization is symmetric
// for them (zero point 0), and TFLM's kernels assume it (FULLY_CONNECTED's, which the LSTM's
// gates use too, stops on TFLITE_DCHECK(filter zero point == 0)). Ends at -1.
const int8_t* WeightInputs(tflite::BuiltinOperator op) {
  static constexpr int8_t kSecond[] = {1, -1};
  static constexpr int8_t kSvdf[] = {1, 2, -1};  // weights_feature, weights_time
  // input-to and recurrent-to weights of the four gates, and the projection weights
  static constexpr int8_t kLstm[] = {1, 2, 3, 4, 5, 6, 7, 8, 16, -1};
  switch (op) {
    case tflite::BuiltinOperator_FULLY_CONNECTED:
    case tflite::BuiltinOperator_CONV_2D:
    case tflite::BuiltinOperator_DEPTHWISE_CONV_2D:
    case tflite::BuiltinOperator_TRANSPOSE_CONV:  // inputs: output shape, weights, input, bias
      return kSecond;
    case tflite::BuiltinOperator_SVDF:
      return kSvdf;
    case tflite::BuiltinOperator_UNIDIRECTIONAL_SEQUENCE_LSTM:
      return kLstm;
    default:
      return nullptr;
  }
}

// Elementwise ops whose kernel reads both inputs as the output's type.
bool SameTypeOperands(tflite::BuiltinOperator op) {
  switch (op) {
    case tflite::BuiltinOperator_ADD:
    case tflite::BuiltinOperator_SUB:
    case tflite::BuiltinOperator_MUL:
    case tflite::BuiltinOperator_DIV:
    case tflite::BuiltinOperator_MAXIMUM:
    case tflite::BuiltinOperator_MINIMUM:
      return true;
    default:
      return false;
  }
}

// "5", "2 or 3", "at least 1", "1 to 10": how many an op takes.
void Takes(int low, int high, char* out, size_t out_len) {
  if (low == high) {
    snprintf(out, out_len, "%d", low);
  } else if (high == kAny) {
    snprintf(out, out_len, "at least %d", low);
  } else if (high == low + 1) {
    snprintf(out, out_len, "%d or %d", low, high);
  } else {
    snprintf(out, out_len, "%d to %d", low, high);
  }
}

// The first scale of a tensor as TFLM copies it into params.scale (0 without both a scale and a
// zero point).
double Scale(const tflite::Tensor* t) {
  const tflite::QuantizationParameters* q = t->quantization();
  if (q == nullptr || Size(q->scale()) == 0 || Size(q->zero_point()) == 0) return 0;
  return q->scale()->Get(0);
}

// What TFLM's kernel of builtin op `code` needs of operator `j` of subgraph `s` beyond valid
// indices: its inputs and outputs, symmetric int8 weights, operands of one type, and the scales
// whose ratios TFLM checks with TFLITE_CHECK (ADD, SUB, SOFTMAX) rather than refuse.
bool CheckOperator(const tflite::Operator* op, tflite::BuiltinOperator code, uint32_t j, uint32_t s,
                   const tflite::SubGraph* sg, char* error, size_t error_len) {
  const char* name = tflite::EnumNameBuiltinOperator(code);
  const unsigned long jl = j, sl = s;
  const int inputs = static_cast<int>(Size(op->inputs()));
  const int outputs = static_cast<int>(Size(op->outputs()));
  char takes[32];
  for (const Arity& a : kArities) {
    if (a.op != code) continue;
    if (inputs < a.min_in || inputs > a.max_in) {
      Takes(a.min_in, a.max_in, takes, sizeof(takes));
      snprintf(error, error_len,
               "model: operator %lu (%s) of subgraph %lu has %d input%s; %s takes %s", jl, name, sl,
               inputs, inputs == 1 ? "" : "s", name, takes);
      return false;
    }
    if (outputs < a.min_out || outputs > a.max_out) {
      Takes(a.min_out, a.max_out, takes, sizeof(takes));
      snprintf(error, error_len,
               "model: operator %lu (%s) of subgraph %lu has %d output%s; %s writes %s", jl, name,
               sl, outputs, outputs == 1 ? "" : "s", name, takes);
      return false;
    }
  }
  const auto* tensors = sg->tensors();
  const int8_t* weights = WeightInputs(code);
  for (int k = 0; weights != nullptr && weights[k] >= 0; ++k) {
    if (weights[k] >= inputs || op->inputs()->Get(weights[k]) < 0) continue;  // optional
    const int32_t w = op->inputs()->Get(weights[k]);
    const tflite::Tensor* t = tensors->Get(w);
    const tflite::QuantizationParameters* q = t->quantization();
    if ((t->type() != tflite::TensorType_INT8 && t->type() != tflite::TensorType_INT4) ||
        q == nullptr || Size(q->scale()) == 0) {
      continue;
    }
    for (uint32_t z = 0; z < Size(q->zero_point()); ++z) {
      if (q->zero_point()->Get(z) == 0) continue;
      snprintf(error, error_len,
               "model: operator %lu (%s) of subgraph %lu has weights (tensor %ld) with zero point "
               "%lld, not 0",
               jl, name, sl, static_cast<long>(w), static_cast<long long>(q->zero_point()->Get(z)));
      return false;
    }
  }
  if (SameTypeOperands(code) && inputs >= 2 && outputs >= 1) {
    const int32_t operands[3] = {op->inputs()->Get(0), op->inputs()->Get(1), op->outputs()->Get(0)};
    for (int k = 0; k < 2; ++k) {  // an output is never -1 (CheckIndices)
      if (operands[k] < 0) {
        snprintf(error, error_len, "model: operator %lu (%s) of subgraph %lu omits input %d", jl,
                 name, sl, k);
        return false;
      }
    }
    const tflite::TensorType type = tensors->Get(operands[2])->type();
    for (int k = 0; k < 2; ++k) {
      const tflite::TensorType other = tensors->Get(operands[k])->type();
      if (other == type) continue;
      snprintf(error, error_len,
               "model: operator %lu (%s) of subgraph %lu mixes types: tensor %ld is %s, tensor %ld "
               "%s",
               jl, name, sl, static_cast<long>(operands[k]), tflite::EnumNameTensorType(other),
               static_cast<long>(operands[2]), tflite::EnumNameTensorType(type));
      return false;
    }
    if ((code == tflite::BuiltinOperator_ADD || code == tflite::BuiltinOperator_SUB) &&
        (type == tflite::TensorType_INT8 || type == tflite::TensorType_INT16)) {
      // TFLM rescales both inputs to twice the larger input scale, shifted left 20 bits (15 for
      // int16), and checks that the output's multiplier is below 1 (and every one above 0).
      for (int k = 0; k < 3; ++k) {
        if (Scale(tensors->Get(operands[k])) > 0) continue;
        snprintf(error, error_len,
                 "model: operator %lu (%s) of subgraph %lu has unquantized operand tensor %ld", jl,
                 name, sl, static_cast<long>(operands[k]));
        return false;
      }
      const double in =
          std::max(Scale(tensors->Get(operands[0])), Scale(tensors->Get(operands[1])));
      const double out = Scale(tensors->Get(operands[2]));
      const int shift = type == tflite::TensorType_INT16 ? 15 : 20;
      if (!(2 * in < static_cast<double>(1 << shift) * out)) {
        snprintf(error, error_len,
                 "model: operator %lu (%s) of subgraph %lu has output scale %g, at most 2^-%d "
                 "times twice input scale %g",
                 jl, name, sl, out, shift, in);
        return false;
      }
    }
  }
  if (code == tflite::BuiltinOperator_SOFTMAX && inputs >= 1 && op->inputs()->Get(0) >= 0 &&
      tensors->Get(op->inputs()->Get(0))->type() == tflite::TensorType_INT8) {
    // TFLM turns beta times the input scale, shifted left 26 bits, into a multiplier it checks is
    // above 1 (a missing SoftmaxOptions leaves beta 0)
    const auto* options = op->builtin_options_as_SoftmaxOptions();
    const double beta = options == nullptr ? 0 : options->beta();
    const double scale = Scale(tensors->Get(op->inputs()->Get(0)));
    if (!(beta * scale * 67108864.0 > 1)) {
      snprintf(error, error_len,
               "model: operator %lu (%s) of subgraph %lu has beta %g times input scale %g at most "
               "2^-26",
               jl, name, sl, beta, scale);
      return false;
    }
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
      const tflite::OperatorCode* oc = model->operator_codes()->Get(op->opcode_index());
      const tflite::BuiltinOperator code = std::max(
          oc->builtin_code(), static_cast<tflite::BuiltinOperator>(oc->deprecated_builtin_code()));
      if (!CheckOperator(op, code, j, s, sg, error, error_len)) return false;
    }
  }
  return true;
}

}  // namespace tinyhil
