//! The torch family as PyTorch's CUDA wheel index (`whl/cu116`) serves it, and as the default
//! index serves it, with the wheels' real dependency metadata: the stand-ins for Marqo's
//! `--extra-index-url` line, which tests cannot reach.

use crate::{Index, Wheel};

/// The platform tags of PyTorch's CUDA wheels: built on one machine, tagged `linux_x86_64`
/// (plus Windows wheels, which no Linux target takes).
const CUDA_TAGS: [&str; 2] = ["cp39-cp39-linux_x86_64", "cp39-cp39-win_amd64"];

/// What torchaudio 0.13.1 and torchvision 0.14.1 require of torch, as their wheels say.
const TORCH_PIN: &str = "torch (==1.13.1)";

/// A torchvision 0.14.1 wheel (`version` with or without its local label) with the real
/// wheels' `Requires-Dist`.
fn torchvision(version: &str, tag: &str) -> Wheel {
    ["typing-extensions", "numpy", "requests", TORCH_PIN, "pillow (!=8.3.*,>=5.3.0)"]
        .into_iter()
        .fold(Wheel::new("torchvision", version).tag(tag), Wheel::requires)
}

/// An index shaped like PyTorch's `whl/cu116` ([`Index::pytorch_like`]: static HTML, `%2B`
/// in hrefs, no sizes, upload times or PEP 658) holding `torch 1.13.1+cu116`,
/// `torchvision 0.14.1+cu116` and `torchaudio 0.13.1+cu116` with the `Requires-Dist` of the
/// real wheels. The CUDA wheels bundle CUDA, so unlike the default index's x86_64 torch
/// they need no `nvidia-*` packages.
pub fn torch_cu116_index() -> Index {
    let index = Index::pytorch_like();
    for tag in CUDA_TAGS {
        Wheel::new("torch", "1.13.1+cu116").tag(tag).requires("typing-extensions").publish(&index);
        torchvision("0.14.1+cu116", tag).publish(&index);
        Wheel::new("torchaudio", "0.13.1+cu116").tag(tag).requires(TORCH_PIN).publish(&index);
    }
    index
}

/// Publishes the torch family as the default index has it: `torch 1.13.1` for x86_64 (whose
/// wheel needs the `nvidia-*-cu11` packages) and aarch64, the matching `torchvision` and
/// `torchaudio`, and what they need, small and generated.
pub fn publish_default_torch(index: &Index) {
    const AMD: &str = "cp39-cp39-manylinux1_x86_64";
    const ARM: &str = "cp39-cp39-manylinux2014_aarch64";
    let nvidia = [
        "nvidia-cuda-runtime-cu11 (==11.7.99)",
        "nvidia-cudnn-cu11 (==8.5.0.96)",
        "nvidia-cublas-cu11 (==11.10.3.66)",
        "nvidia-cuda-nvrtc-cu11 (==11.7.99)",
    ];
    let mut torch = Wheel::new("torch", "1.13.1").tag(AMD).requires("typing-extensions");
    for req in nvidia {
        torch = torch.requires(&format!("{req} ; platform_system == \"Linux\""));
    }
    torch.publish(index);
    Wheel::new("torch", "1.13.1").tag(ARM).requires("typing-extensions").publish(index);
    for req in nvidia {
        let (name, version) = req.split_once(" (==").expect("pinned");
        Wheel::new(name, version.trim_end_matches(')'))
            .tag("py3-none-manylinux1_x86_64")
            .requires("setuptools")
            .requires("wheel")
            .publish(index);
    }
    for tag in [AMD, ARM] {
        torchvision("0.14.1", tag).publish(index);
        Wheel::new("torchaudio", "0.13.1").tag(tag).requires(TORCH_PIN).publish(index);
        Wheel::new("numpy", "1.23.4").tag(tag).publish(index);
        Wheel::new("pillow", "10.4.0").tag(tag).publish(index);
    }
    Wheel::new("typing-extensions", "4.12.2").publish(index);
    Wheel::new("requests", "2.28.1").requires("idna<4,>=2.5").publish(index);
    Wheel::new("idna", "2.8").publish(index);
    Wheel::new("setuptools", "69.0.0").publish(index);
    Wheel::new("wheel", "0.43.0").publish(index);
}
