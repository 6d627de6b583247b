// C ABI over PyTorch's c10d::TCPStore (the rendezvous store torchrun and
// torch.distributed use): rank 0 hosts it, every rank is a client.
//
// No C++ exception may cross into Rust: every entry point catches everything and returns
// a non-zero status with the message copied into the caller's buffer.

#include "swinface_guarded.h"

#include "store_shim.h"

#include <c10/util/Logging.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

using swinface::guarded;
using swinface::kError;
using swinface::kOk;
using swinface::write_message;

std::vector<std::string> key_list(const char* const* keys, size_t count) {
  std::vector<std::string> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    out.emplace_back(keys[i]);
  }
  return out;
}

}  // namespace

extern "C" {

// Connects to (or, with is_server, hosts and connects to) the store at host:port. A server
// with wait_workers blocks until `world_size` clients joined or `timeout_ms` passed.
// port 0 with is_server: the system picks a free port (see swinface_store_port).
int swinface_store_new(const char* host, uint16_t port, int is_server, size_t world_size,
                       int wait_workers, int64_t timeout_ms, swinface_store** out,
                       char* error, size_t error_length) {
  return guarded(error, error_length, [&] {
    // The collectives wait in short slices (to notice an abort); c10d logs a warning for
    // every slice that ends without the keys. Errors stay visible; TORCH_CPP_LOG_LEVEL,
    // when set, decides instead.
    if (std::getenv("TORCH_CPP_LOG_LEVEL") == nullptr && FLAGS_caffe2_log_level < 2) {
      FLAGS_caffe2_log_level = 2;
    }
    c10d::TCPStoreOptions options;
    options.port = port;
    options.isServer = is_server != 0;
    if (world_size > 0) {
      options.numWorkers = world_size;
    }
    options.waitWorkers = wait_workers != 0;
    options.timeout = std::chrono::milliseconds(timeout_ms);
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), options);
    *out = new swinface_store{std::move(store)};
  });
}

void swinface_store_free(swinface_store* handle) {
  try {
    delete handle;
  } catch (...) {
    // A destructor that throws has nothing left to report to.
  }
}

uint16_t swinface_store_port(const swinface_store* handle) {
  return handle->store->getPort();
}

int swinface_store_set(swinface_store* handle, const char* key, const uint8_t* data,
                       size_t length, char* error, size_t error_length) {
  return guarded(error, error_length, [&] {
    std::vector<uint8_t> value(data, data + length);
    handle->store->set(std::string(key), value);
  });
}

// Reads `key` (waiting up to the store's timeout); the bytes are malloc'ed into *data and
// freed by the caller with swinface_store_free_bytes.
int swinface_store_get(swinface_store* handle, const char* key, uint8_t** data,
                       size_t* length, char* error, size_t error_length) {
  return guarded(error, error_length, [&] {
    std::vector<uint8_t> value = handle->store->get(std::string(key));
    *length = value.size();
    *data = static_cast<uint8_t*>(std::malloc(value.empty() ? 1 : value.size()));
    if (*data == nullptr) {
      throw std::bad_alloc();
    }
    if (!value.empty()) {
      std::memcpy(*data, value.data(), value.size());
    }
  });
}

void swinface_store_free_bytes(uint8_t* data) { std::free(data); }

int swinface_store_add(swinface_store* handle, const char* key, int64_t delta,
                       int64_t* value, char* error, size_t error_length) {
  return guarded(error, error_length,
                 [&] { *value = handle->store->add(std::string(key), delta); });
}

int swinface_store_delete(swinface_store* handle, const char* key, int* deleted,
                          char* error, size_t error_length) {
  return guarded(error, error_length,
                 [&] { *deleted = handle->store->deleteKey(std::string(key)) ? 1 : 0; });
}

int swinface_store_check(swinface_store* handle, const char* const* keys, size_t count,
                         int* present, char* error, size_t error_length) {
  return guarded(error, error_length, [&] {
    *present = handle->store->check(key_list(keys, count)) ? 1 : 0;
  });
}

int swinface_store_num_keys(swinface_store* handle, int64_t* count, char* error,
                            size_t error_length) {
  return guarded(error, error_length, [&] { *count = handle->store->getNumKeys(); });
}

// Waits until every key exists; fails once `timeout_ms` passed.
int swinface_store_wait(swinface_store* handle, const char* const* keys, size_t count,
                        int64_t timeout_ms, char* error, size_t error_length) {
  return guarded(error, error_length, [&] {
    handle->store->wait(key_list(keys, count), std::chrono::milliseconds(timeout_ms));
  });
}

}  // extern "C"
