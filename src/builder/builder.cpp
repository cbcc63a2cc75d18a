#include "launch/builder.hpp"

namespace launch {

Builder::~Builder() = default;

}  // namespace launch
