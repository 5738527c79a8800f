"""Image geometry and defaults shared by every part of latentbench."""

IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
N_CHANNELS = 1
N_PIXELS = N_CHANNELS * IMAGE_HEIGHT * IMAGE_WIDTH  # 784
IMAGE_SHAPE = (N_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH)
N_CLASSES = 10

MODEL_NAMES = ("pca", "fc", "cnn")

DATASET_NAMES = ("mnist", "mnist-5k")

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
