"""Image geometry and defaults shared by every part of latentbench."""

IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
N_CHANNELS = 1
N_PIXELS = N_CHANNELS * IMAGE_HEIGHT * IMAGE_WIDTH  # 784
IMAGE_SHAPE = (N_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH)
N_CLASSES = 10

# Every reducer compare knows, and the ones it runs unless told otherwise.
MODEL_NAMES = ("pca", "fc", "cnn", "vae", "umap", "tsne")
DEFAULT_MODELS = ("pca", "fc", "cnn")
# The autoencoders among them (trained with Lightning, with a decoder).
AUTOENCODER_NAMES = ("fc", "cnn", "vae")
# Non-parametric baselines with no decoder (the optional ``manifold`` extra): fit on
# a seeded subsample of this many training images, then transform the test images.
MANIFOLD_MODEL_NAMES = ("umap", "tsne")
MANIFOLD_FIT_SIZE = 10_000
# openTSNE's gradients are defined up to 3 dimensions (Barnes-Hut beyond 2).
TSNE_MAX_COMPONENTS = 3

DATASET_NAMES = ("mnist", "mnist-5k", "fashion-mnist", "kmnist", "emnist-letters")

# Gaussian-mixture components for data without labels, whose number of classes is
# unknown: the clusters colour the scatter plots. Labelled data use their classes.
N_CLUSTERS_UNLABELLED = 10
# The models that take 28x28 images only; other sizes are resized for them.
CONV_MODEL_NAMES = ("cnn",)

# The fewest test images every metric is defined for: trustworthiness needs more
# than twice its 5 neighbours, the Gaussian mixture one point per component.
MIN_TEST_IMAGES = 20

# The columns that measure an embedding's quality, in the order tables show them.
QUALITY_COLUMNS = (
    "recon_mse",
    "knn_accuracy",
    "silhouette",
    "trustworthiness",
    "gmm_ari",
    "gmm_nmi",
)

# Choices of the configurable autoencoders; the layers they name live in
# latentbench.models.autoencoders.
ACTIVATION_NAMES = ("relu", "leaky_relu", "elu", "gelu", "silu", "tanh")
OUTPUT_ACTIVATION_NAMES = ("sigmoid", "identity")
LOSS_NAMES = ("mse", "bce")
LR_SCHEDULE_NAMES = ("constant", "cosine", "onecycle")
