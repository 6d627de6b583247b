// The store handle shared by store_shim.cpp and nccl_shim.cpp.
#pragma once

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

// The handle Rust holds: an owning reference to the store.
struct swinface_store {
  c10::intrusive_ptr<c10d::TCPStore> store;
};
