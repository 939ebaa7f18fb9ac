"""The reference label set: the six LSPC V2020 classes the project is built around."""

DEFAULT_CATEGORIES: tuple[str, ...] = (
    "Automotive",
    "Baby",
    "Books",
    "Clothing",
    "Jewelry",
    "Shoes",
)
