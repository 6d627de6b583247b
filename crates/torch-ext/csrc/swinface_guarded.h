// The C ABI rule of every shim (torch-ext's and crates/distributed's): no C++ exception may
// cross into Rust. Entry points run their body in `guarded`, which returns kOk, or kError
// with the exception's message copied into the caller's buffer.
#pragma once

#include <c10/util/Exception.h>

#include <cstddef>
#include <cstring>
#include <exception>

namespace swinface {

constexpr int kOk = 0;
constexpr int kError = 1;

// Copies `message` into `buffer`, truncated and always NUL-terminated.
inline void write_message(char* buffer, size_t length, const char* message) {
  if (buffer == nullptr || length == 0) {
    return;
  }
  std::strncpy(buffer, message, length - 1);
  buffer[length - 1] = '\0';
}

// Runs `body`; any exception becomes kError with its message in `buffer`.
template <typename Body>
int guarded(char* buffer, size_t length, Body body) {
  try {
    body();
    return kOk;
  } catch (const c10::Error& error) {
    // what() appends a C++ backtrace; the message alone is what a user can act on.
    write_message(buffer, length, error.what_without_backtrace());
  } catch (const std::exception& error) {
    write_message(buffer, length, error.what());
  } catch (...) {
    write_message(buffer, length, "unknown C++ exception");
  }
  return kError;
}

}  // namespace swinface
