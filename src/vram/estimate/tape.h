#pragma once
// A symbolic autograd tape: tensors are sizes, operations follow LibTorch's rules for what a backward node
// keeps (an input is kept when the gradient of another input needs it, and only when that input needs a
// gradient). Replaying a stage's forward on it gives the bytes the stage keeps for backward, whether it keeps its
// own input, and the highest transient allocation on the way. Private to vram/estimate.
//
// Thread-safety: a Tape is used by one thread.

#include <algorithm>
#include <cstdint>
#include <vector>

namespace vram::estimate {

struct Sym {
  int id = -1;
  int64_t bytes = 0;
  bool requires_grad = false;
};

class Tape {
 public:
  // record: autograd is on (training); off for inference, when nothing is kept.
  explicit Tape(bool record) : record_(record) {}

  // The stage input, already allocated by the caller. `persistent` inputs (the batch) are never freed.
  Sym input(int64_t bytes, bool requires_grad, bool persistent) {
    Sym sym = add(bytes, requires_grad, /*counts=*/false);
    tensors_[static_cast<size_t>(sym.id)].persistent = persistent;
    input_id_ = sym.id;
    return sym;
  }
  // A new tensor; a graph is recorded for it when any input needs a gradient.
  Sym make(int64_t bytes, bool requires_grad) { return add(bytes, record_ && requires_grad, /*counts=*/true); }
  // What a backward node keeps. Views share their base's memory: save the base.
  void save(const Sym& sym) {
    if (record_) tensors_[static_cast<size_t>(sym.id)].saved = true;
  }
  // The forward code drops its last reference: freed unless saved.
  void release(const Sym& sym) {
    auto& tensor = tensors_[static_cast<size_t>(sym.id)];
    if (tensor.saved || tensor.freed || tensor.persistent || sym.id == input_id_) return;
    tensor.freed = true;
    live_ -= tensor.bytes;
  }
  // A small saved tensor that exists only for backward (statistics, cos/sin tables, masks).
  void keep(int64_t bytes) {
    if (record_) save(make(bytes, true));
  }

  struct Summary {
    int64_t kept_bytes = 0;       // saved by backward nodes, the stage input excluded
    bool input_kept = false;      // the stage input is saved (the caller's drop does not free it)
    int64_t transient_bytes = 0;  // highest allocation above the stage's start
  };
  Summary finish(const Sym& output) const {
    Summary summary;
    summary.transient_bytes = peak_;
    for (const auto& tensor : tensors_) {
      if (tensor.id == input_id_) {
        summary.input_kept = tensor.saved;
      } else if (tensor.saved && tensor.id != output.id) {
        summary.kept_bytes += tensor.bytes;
      }
    }
    return summary;
  }

 private:
  struct Tensor {
    int id;
    int64_t bytes;
    bool saved = false;
    bool freed = false;
    bool persistent = false;
  };

  Sym add(int64_t bytes, bool requires_grad, bool counts) {
    const int id = static_cast<int>(tensors_.size());
    tensors_.push_back({id, bytes});
    if (counts) {
      live_ += bytes;
      peak_ = std::max(peak_, live_);
    }
    return {id, bytes, requires_grad};
  }

  bool record_;
  int input_id_ = -1;
  int64_t live_ = 0;
  int64_t peak_ = 0;
  std::vector<Tensor> tensors_;
};

}  // namespace vram::estimate
