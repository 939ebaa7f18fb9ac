"""A deterministic corpus of shop-like product titles for the six reference categories.

It exists so that training, tests and demos run without downloading a data set. Titles are
assembled from templates with real brands, product lines, sizes and part numbers; colours,
sizes, materials and words such as "Kids" or "Leather" recur across categories (and a few
product types sit on the border: baby car seats, car workshop manuals, baby clothes) so a
model has to read more than one word to get them right.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

from prodcat.trainer.records import LabeledTitle, read_jsonl, write_jsonl

__all__ = ["LabeledTitle", "generate", "read_jsonl", "write_jsonl"]

# Shared across categories on purpose: these words alone must not decide the class.
COLOURS = (
    "Black", "White", "Navy", "Grey", "Red", "Blue", "Pink", "Green", "Beige", "Brown",
    "Olive", "Burgundy", "Cream", "Silver", "Rose Gold", "Charcoal", "Khaki", "Tan",
)  # fmt: skip
LETTER_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
KIDS_AGES = ("2-3 Years", "3-4 Years", "5-6 Years", "7-8 Years", "9-10 Years", "11-12 Years")
CAR_FITMENTS = (
    ("VW", "Golf Mk7"), ("Ford", "Focus Mk3"), ("BMW", "3 Series E90"), ("Audi", "A4 B8"),
    ("Vauxhall", "Astra J"), ("Toyota", "Yaris"), ("Renault", "Clio IV"), ("Peugeot", "208"),
    ("Skoda", "Octavia III"), ("Mercedes-Benz", "C-Class W204"), ("Nissan", "Qashqai J11"),
    ("Kia", "Sportage"), ("Honda", "Civic"), ("Volvo", "XC60"),
)  # fmt: skip
YEAR_RANGES = ("2008-2014", "2012-2019", "2013-2020", "2014-2018", "2016-2021", "2019-2024")

Generator = Callable[[random.Random], str]


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def _code(rng: random.Random, letters: int, digits: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(letters)) + _digits(rng, digits)


# --- Automotive -----------------------------------------------------------------------------


def _wiper_blades(rng: random.Random) -> str:
    brand, line = rng.choice(
        (("Bosch", "Aerotwin"), ("Bosch", "Twin"), ("Valeo", "Silencio"),
         ("Michelin", "Stealth Hybrid"), ("Rain-X", "Latitude"), ("Heyner", "Hybrid"))
    )  # fmt: skip
    driver = rng.randrange(500, 725, 25)
    passenger = rng.randrange(340, driver, 25)
    part = f"3397{_digits(rng, 6)}" if brand == "Bosch" else _code(rng, 2, 4)
    return f"{brand} {part} {line} Wiper Blade Set {driver}/{passenger}mm"


def _engine_oil(rng: random.Random) -> str:
    brand = rng.choice(
        ("Castrol EDGE", "Castrol Magnatec", "Mobil 1 ESP", "Shell Helix Ultra",
         "Total Quartz INEO", "Liqui Moly Top Tec 4200", "Valvoline SynPower", "Motul 8100 X-clean")
    )  # fmt: skip
    viscosity = rng.choice(("0W-20", "0W-30", "5W-30", "5W-40", "10W-40"))
    spec = rng.choice(("Fully Synthetic", "Longlife III", "C3", "Part Synthetic", "LL-04"))
    litres = rng.choice((1, 4, 5, 10))
    return f"{brand} {viscosity} {spec} Engine Oil, {litres}L"


def _spark_plugs(rng: random.Random) -> str:
    brand = rng.choice(("NGK", "Denso", "Bosch", "Champion"))
    code = f"{rng.choice(('BKR', 'BCPR', 'ZFR', 'LFR', 'PFR', 'IFR'))}{rng.randint(5, 7)}"
    code += rng.choice(("E", "EIX", "E-11", "IX-11S", "AP-11"))
    kind = rng.choice(("Iridium", "Laser Platinum", "Nickel", "Double Platinum"))
    return f"{brand} {code} {kind} Spark Plug (Pack of {rng.choice((1, 4, 6))})"


def _brakes(rng: random.Random) -> str:
    brand = rng.choice(("Brembo", "TRW", "Ferodo", "Mintex", "ATE", "Pagid", "EBC Greenstuff"))
    axle = rng.choice(("Front", "Rear"))
    make, model = rng.choice(CAR_FITMENTS)
    if rng.random() < 0.5:
        part = f"P {rng.randint(10, 99)} {_digits(rng, 3)}" if brand == "Brembo" else _code(rng, 3, 4)
        return f"{brand} {part} {axle} Brake Pad Set for {make} {model}"
    diameter = rng.randrange(256, 346, 6)
    return f"{brand} {axle} Brake Discs Pair {diameter}mm Vented, {make} {model} {rng.choice(YEAR_RANGES)}"


def _tyre(rng: random.Random) -> str:
    brand, model = rng.choice(
        (("Michelin", "Pilot Sport 4"), ("Michelin", "CrossClimate 2"),
         ("Continental", "PremiumContact 6"), ("Bridgestone", "Turanza T005"),
         ("Goodyear", "EfficientGrip Performance 2"), ("Pirelli", "P Zero"),
         ("Dunlop", "Sport Maxx RT2"), ("Hankook", "Ventus Prime 4"), ("Falken", "Azenis FK520"))
    )  # fmt: skip
    width = rng.randrange(185, 255, 10)
    profile = rng.randrange(35, 70, 5)
    rim = rng.randint(15, 19)
    load = rng.randint(88, 101)
    speed = rng.choice("HVWY")
    extra = rng.choice(("", " XL", " Run Flat", " XL FR"))
    return f"{brand} {model} {width}/{profile} R{rim} {load}{speed}{extra} Tyre"


def _bulbs(rng: random.Random) -> str:
    line = rng.choice(
        ("Osram Night Breaker Laser", "Philips X-tremeVision Pro150", "Ring Xenon130",
         "Osram Cool Blue Intense", "Philips WhiteVision Ultra", "Hella Performance 150")
    )  # fmt: skip
    fitting = rng.choice(("H1", "H4", "H7", "H11", "HB3", "D1S"))
    return f"{line} {fitting} 12V {rng.choice(('55W', '60/55W'))} Headlight Bulbs, Twin Pack"


def _filter(rng: random.Random) -> str:
    brand = rng.choice(("Mann-Filter", "Mahle", "Bosch", "Febi Bilstein", "Blue Print", "Purflux"))
    kind = rng.choice(("Oil Filter", "Air Filter", "Cabin Pollen Filter", "Fuel Filter"))
    make, model = rng.choice(CAR_FITMENTS)
    engine = rng.choice(("1.6 TDI", "2.0 TDI", "1.2 TSI", "1.4i 16V", "1.5 dCi", "2.0d", "1.0 EcoBoost"))
    return f"{brand} {_code(rng, rng.randint(1, 2), rng.randint(3, 5))} {kind} for {make} {model} {engine}"


def _car_accessory(rng: random.Random) -> str:
    colour = rng.choice(COLOURS)
    make, model = rng.choice(CAR_FITMENTS)
    choices = (
        f"Universal Car Floor Mats Set of 4, {colour} Rubber, Heavy Duty",
        f"{rng.choice(('Sumex', 'AutoDrive', 'Simply'))} Leather Steering Wheel Cover "
        f"{rng.choice((37, 38, 39))}cm, {colour}",
        f"Tailored Car Seat Covers for {make} {model}, {colour} Leather Look, Full Set",
        f"{rng.choice(('Nextbase 322GW', 'Garmin Mini 2', 'Vantrue N2 Pro', 'Viofo A129'))} "
        f"Dash Cam 1080p Front and Rear",
        f"Kids Car Window Sun Shade {rng.choice((2, 4))} Pack, Blocks 98% UV, {colour}",
        f"{rng.choice(('NOCO Boost', 'Ring', 'Halfords Advanced'))} 12V Jump Starter "
        f"{rng.choice((400, 600, 1000, 1500))}A Lithium Power Bank",
        f"Thule Roof Rack Cross Bars for {make} {model} {rng.choice(YEAR_RANGES)}",
        f"Tow Bar Mounted Bike Carrier for {rng.choice((2, 3, 4))} Bikes, 13-Pin",
        f"Meguiar's Ultimate Quik Wax Car Polish {rng.choice((473, 650))}ml",
        f"Car Phone Holder Magnetic Air Vent Mount, {colour}",
    )
    return rng.choice(choices)


# --- Baby -----------------------------------------------------------------------------------


def _nappies(rng: random.Random) -> str:
    brand = rng.choice(
        ("Pampers Baby-Dry", "Pampers Premium Protection", "Huggies Little Snugglers",
         "Huggies Drynites", "Kit & Kin Eco", "Little Angels Supreme Comfort", "Mamia Ultra Dry")
    )  # fmt: skip
    size, weight = rng.choice(
        ((1, "2-5"), (2, "4-8"), (3, "6-10"), (4, "9-14"), (5, "11-16"), (6, "13-18"), (7, "15+"))
    )
    count = rng.choice((24, 44, 58, 78, 112, 136, 174, 198))
    return f"{brand} Nappies Size {size}, {weight} kg, {count} Count"


def _wipes(rng: random.Random) -> str:
    brand = rng.choice(
        ("Pampers Sensitive", "Huggies Pure", "WaterWipes", "Johnson's Extra Sensitive",
         "Aldi Mamia Fragrance Free", "Cheeky Wipes Reusable")
    )  # fmt: skip
    packs = rng.choice((1, 4, 6, 9, 12, 18))
    return f"{brand} Baby Wipes, {packs} x {rng.choice((48, 52, 56, 60, 64, 80))} Wipes"


def _feeding(rng: random.Random) -> str:
    colour = rng.choice(COLOURS)
    line = rng.choice(
        ("Tommee Tippee Closer to Nature", "Philips Avent Natural Response", "MAM Easy Start",
         "Dr. Brown's Options+", "NUK First Choice+", "Nanobebe Flexy")
    )  # fmt: skip
    formula = rng.choice(("Aptamil", "Cow & Gate", "Kendamil Organic", "SMA Pro", "HiPP Organic"))
    stage = rng.choice(
        ("First Infant Milk from Birth", "Follow On Milk 6-12 Months", "Growing Up Milk 1-2 Years")
    )
    pump = rng.choice(("Tommee Tippee", "Philips Avent", "Elvie", "Medela"))
    choices = (
        f"{line} Anti-Colic Baby Bottles {rng.choice((125, 150, 260, 330))}ml, "
        f"Pack of {rng.choice((2, 3, 4, 6))}, {colour}",
        f"{line} Teats Slow Flow {rng.choice(('0m+', '1m+', '3m+', '6m+'))}, {rng.choice((2, 4))} Pack",
        f"Munchkin Miracle 360 Sippy Cup {rng.choice((207, 296))}ml, {colour}",
        f"{formula} {stage} {rng.choice(('800g', '1.2kg', '6 x 200ml'))}",
        f"{pump} Electric Breast Pump {rng.choice(('Single', 'Double'))} with Night Light",
        f"Silicone Baby Weaning Set Suction Plate, Bowl and Spoon, {colour}",
    )
    return rng.choice(choices)


def _baby_gear(rng: random.Random) -> str:
    colour = rng.choice(COLOURS)
    car_seat = rng.choice(
        ("Maxi-Cosi Pebble 360", "Cybex Aton M", "Joie i-Snug 2", "Britax Römer Baby-Safe 3")
    )
    pushchair = rng.choice(
        ("iCandy Peach 7", "Bugaboo Fox 5", "Joie Versatrax", "Silver Cross Reef", "Babyzen YOYO2")
    )
    monitor = f"{rng.choice(('VTech', 'Motorola', 'Angelcare', 'Owlet'))} " + rng.choice(
        ("BM3300", "VM44", "AC327", "Dream Duo", "VM85")
    )
    toy = rng.choice(
        ("Rainforest Jumperoo", "Deluxe Kick & Play Piano Gym", "Baby Bouncer", "Sit-Me-Up Floor Seat")
    )
    choices = (
        f"{car_seat} i-Size Baby Car Seat, {rng.choice(('Essential', 'Deep', 'Midnight', 'Pure'))} {colour}",
        f"{pushchair} {rng.choice(('Pushchair', 'Travel System', 'Stroller'))}, {colour}",
        f"{monitor} Video Baby Monitor with "
        f"{rng.choice(('Night Vision', 'Two-Way Talk', 'Room Thermometer'))}",
        f"Fisher-Price {toy}",
        f"{rng.choice(('Chicco Next2Me', 'SnüzPod 4', 'Tutti Bambini Cozee'))} Bedside Crib, {colour}",
        f"{rng.choice(('MAM', 'Philips Avent', 'NUK'))} Soothers {rng.choice(('0-6m', '6-18m', '16-36m'))}, "
        f"{rng.choice((2, 4))} Pack, {colour}",
        f"Baby Bath Thermometer Duck, {colour}, {rng.choice(('Floating', 'Digital'))}",
        f"Grobag Baby Sleeping Bag {rng.choice(('0.5', '1.0', '2.5', '3.5'))} Tog, "
        f"{rng.choice(('0-6', '6-18', '18-36'))} Months, {colour}",
        f"Muslin Squares {rng.choice((3, 6, 10))} Pack, 100% Cotton, {colour}",
    )
    return rng.choice(choices)


def _baby_clothes(rng: random.Random) -> str:
    brand = rng.choice(("Carter's", "Gerber", "Mothercare", "Mamas & Papas", "Next Baby", "JoJo Maman Bébé"))
    who = rng.choice(("Baby Girls'", "Baby Boys'", "Unisex Baby", "Newborn"))
    item = rng.choice(("Short-Sleeve Bodysuits", "Sleepsuits", "Rompers", "Vests", "Scratch Mitts"))
    age = rng.choice(("Newborn", "0-3 Months", "3-6 Months", "6-9 Months", "12-18 Months"))
    return f"{brand} {who} {rng.choice((3, 5, 7))}-Pack {item}, {rng.choice(COLOURS)}, {age}"


# --- Books ----------------------------------------------------------------------------------

KNOWN_BOOKS = (
    ("The Silent Patient", "Alex Michaelides"), ("Where the Crawdads Sing", "Delia Owens"),
    ("Atomic Habits", "James Clear"), ("The Thursday Murder Club", "Richard Osman"),
    ("Normal People", "Sally Rooney"), ("The Midnight Library", "Matt Haig"),
    ("Project Hail Mary", "Andy Weir"), ("Sapiens: A Brief History of Humankind", "Yuval Noah Harari"),
    ("The Hobbit", "J.R.R. Tolkien"), ("Pride and Prejudice", "Jane Austen"),
    ("To Kill a Mockingbird", "Harper Lee"), ("Nineteen Eighty-Four", "George Orwell"),
    ("The Very Hungry Caterpillar", "Eric Carle"), ("The Gruffalo", "Julia Donaldson"),
    ("Educated", "Tara Westover"), ("Becoming", "Michelle Obama"),
    ("The Seven Husbands of Evelyn Hugo", "Taylor Jenkins Reid"), ("Lessons in Chemistry", "Bonnie Garmus"),
    ("Dune", "Frank Herbert"), ("The Body Keeps the Score", "Bessel van der Kolk"),
    ("Thinking, Fast and Slow", "Daniel Kahneman"), ("The Salt Path", "Raynor Winn"),
    ("A Little Life", "Hanya Yanagihara"), ("The Catcher in the Rye", "J.D. Salinger"),
    ("Wolf Hall", "Hilary Mantel"), ("Room on the Broom", "Julia Donaldson"),
    ("The Girl on the Train", "Paula Hawkins"), ("Gone Girl", "Gillian Flynn"),
    ("The Tiger Who Came to Tea", "Judith Kerr"), ("Diary of a Wimpy Kid: The Ugly Truth", "Jeff Kinney"),
    ("The Psychology of Money", "Morgan Housel"), ("Circe", "Madeline Miller"),
)  # fmt: skip
TITLE_ADJECTIVES = (
    "Silent", "Last", "Hidden", "Broken", "Golden", "Lost", "Midnight", "Secret", "Burning",
    "Forgotten", "Little", "Wild", "Glass", "Winter", "Crimson", "Quiet", "Red", "Leather",
)  # fmt: skip
TITLE_NOUNS = (
    "Garden", "Lighthouse", "Daughter", "Kingdom", "Orchard", "Promise", "Harbour", "Witness",
    "Summer", "Library", "River", "Crown", "Mountain", "House", "Letters", "Sisters", "Detective",
)  # fmt: skip
FIRST_NAMES = (
    "Sarah", "James", "Emily", "Michael", "Olivia", "David", "Clare", "Thomas", "Lucy", "Robert",
    "Anna", "Peter", "Hannah", "Mark", "Elena", "Colm", "Priya", "Kazuo",
)  # fmt: skip
LAST_NAMES = (
    "Mitchell", "Harrison", "Okafor", "Lindqvist", "Brennan", "Moreau", "Kowalski", "Hughes",
    "Patel", "Fitzgerald", "Nakamura", "Schneider", "Walsh", "Carter", "Dubois", "Reyes",
)  # fmt: skip
BOOK_FORMATS = (
    "Paperback", "Hardcover", "Kindle Edition", "Audio CD", "Mass Market Paperback",
    "Board book", "Leather Bound", "Large Print",
)  # fmt: skip


def _isbn13(rng: random.Random) -> str:
    body = "978" + _digits(rng, 9)
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    return f"{body}{check}"


def _book_title_and_author(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.5:
        return rng.choice(KNOWN_BOOKS)
    title = f"The {rng.choice(TITLE_ADJECTIVES)} {rng.choice(TITLE_NOUNS)}"
    return title, f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def _novel(rng: random.Random) -> str:
    title, author = _book_title_and_author(rng)
    fmt = rng.choice(BOOK_FORMATS)
    year = rng.randint(1995, 2024)
    edition = rng.choice(("2nd", "3rd", "Anniversary", "Illustrated", "Collector's"))
    templates = (
        f"{title} ({fmt}) by {author}",
        f"{title} by {author} | {fmt} | {year}",
        f"{title}: A Novel - {author} ({fmt}, {year})",
        f"{author} - {title} ({rng.choice(('The', 'A'))} {rng.choice(TITLE_NOUNS)} Series Book "
        f"{rng.randint(1, 6)})",
        f"{title} [{fmt}] {author}, ISBN {_isbn13(rng)}",
        f"{title} ({edition} Edition) by {author}",
    )
    return rng.choice(templates)


def _nonfiction(rng: random.Random) -> str:
    author = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    fmt = rng.choice(BOOK_FORMATS)
    make, model = rng.choice(CAR_FITMENTS)
    choices = (
        f"{rng.choice(('Python', 'Excel', 'Photography', 'Gardening', 'Knitting', 'Bookkeeping'))} "
        f"For Dummies, {rng.choice(('2nd', '3rd', '4th', '5th', '7th'))} Edition ({fmt})",
        f"Haynes {make} {model} Owners Workshop Manual {rng.choice(YEAR_RANGES)} ({fmt})",
        f"The {rng.choice(('Baby-Led Weaning', 'Slow Cooker', 'Air Fryer', 'Vegan', 'Sourdough'))} "
        f"Cookbook: {rng.randint(70, 150)} Easy Recipes by {author}",
        f"Kids' {rng.choice(('Dinosaur', 'Space', 'Ocean', 'Unicorn', 'Football'))} "
        f"Activity Book with {rng.randint(100, 500)} Stickers, Ages {rng.choice(('3-5', '4-7', '6-9'))}",
        f"Lonely Planet {rng.choice(('Japan', 'Italy', 'Iceland', 'Portugal', 'Scotland', 'Vietnam'))} "
        f"Travel Guide ({rng.randint(8, 18)}th Edition, {rng.randint(2019, 2025)})",
        f"Collins {rng.choice(('French', 'Spanish', 'German', 'Italian'))} Dictionary and Grammar, "
        f"{fmt}, ISBN {_isbn13(rng)}",
        f"The Complete History of {rng.choice(('Fashion', 'Jewellery', 'the Motor Car', 'Football Boots'))} "
        f"- {author} ({fmt})",
        f"CGP GCSE {rng.choice(('Maths', 'Biology', 'Chemistry', 'English Literature'))} "
        f"Revision Guide, {rng.choice(('Higher', 'Foundation'))} ({fmt})",
    )
    return rng.choice(choices)


# --- Clothing -------------------------------------------------------------------------------

CLOTHING_BRANDS = (
    "Levi's", "Nike", "Adidas", "Under Armour", "Tommy Hilfiger", "Ralph Lauren", "H&M", "Uniqlo",
    "Superdry", "Barbour", "The North Face", "Columbia", "Calvin Klein", "Hugo Boss",
    "Jack & Jones", "Lacoste", "Gap", "Marks & Spencer", "Fred Perry", "Joules",
)  # fmt: skip
GARMENTS = (
    "T-Shirt", "Polo Shirt", "Hoodie", "Sweatshirt", "Crew Neck Jumper", "Fleece Jacket",
    "Puffer Jacket", "Waterproof Rain Jacket", "Oxford Shirt", "Blouse", "Midi Dress", "Leggings",
    "Chino Trousers", "Cargo Shorts", "Pyjama Set", "Joggers", "Cardigan", "Biker Jacket",
    "Swim Shorts", "Parka Coat",
)  # fmt: skip
FABRICS = ("Cotton", "Organic Cotton", "Merino Wool", "Linen", "Polyester", "Leather", "Denim", "Fleece")


def _garment(rng: random.Random) -> str:
    brand = rng.choice(CLOTHING_BRANDS)
    who = rng.choice(("Men's", "Women's", "Boys'", "Girls'", "Kids", "Unisex"))
    size = rng.choice(KIDS_AGES) if who in ("Boys'", "Girls'", "Kids") else rng.choice(LETTER_SIZES)
    if who == "Women's" and rng.random() < 0.4:
        size = f"UK {rng.randrange(6, 22, 2)}"
    fit = rng.choice(("Slim Fit", "Regular Fit", "Relaxed Fit", "Oversized", "Classic"))
    garment = rng.choice(GARMENTS)
    colour = rng.choice(COLOURS)
    templates = (
        f"{brand} {who} {fit} {rng.choice(FABRICS)} {garment}, {colour}, {size}",
        f"{brand} {who} {garment} {colour} Size {size}",
        f"{who} {rng.choice(FABRICS)} {garment} - {colour} - {size}",
        f"{brand} {garment} {colour} {size} - {who}",
    )
    return rng.choice(templates)


def _jeans(rng: random.Random) -> str:
    brand, line = rng.choice(
        (("Levi's", "501 Original Fit"), ("Levi's", "511 Slim"), ("Wrangler", "Texas Stretch"),
         ("Lee", "Brooklyn Straight"), ("G-Star RAW", "3301 Tapered"), ("Diesel", "Sleenker"),
         ("Lee Cooper", "LC10 Bootcut"), ("Levi's", "Ribcage Straight Ankle"))
    )  # fmt: skip
    wash = rng.choice(("Stonewash", "Dark Indigo", "Light Wash", "Rinse", "Black", "Mid Blue"))
    who = rng.choice(("Men's", "Women's"))
    return f"{brand} {who} {line} Jeans, {wash}, W{rng.randint(26, 40)} L{rng.choice((28, 30, 32, 34))}"


def _underwear_accessories(rng: random.Random) -> str:
    brand = rng.choice(CLOTHING_BRANDS)
    colour = rng.choice(COLOURS)
    choices = (
        f"{brand} Men's Boxer Briefs {rng.choice((3, 5))} Pack, {colour}, {rng.choice(LETTER_SIZES)}",
        f"{brand} Women's Seamless Sports Bra, {colour}, {rng.choice(LETTER_SIZES)}",
        f"{brand} Unisex Cotton Socks {rng.choice((5, 6, 10))} Pairs, {colour}, "
        f"{rng.choice(('UK 6-11', 'UK 4-8', 'UK 12-14'))}",
        f"{brand} Men's Leather Belt {rng.choice((30, 32, 34, 36, 38))}\" {colour} with Silver Buckle",
        f"{brand} Knitted Beanie Hat and Scarf Set, {colour}, One Size",
        f"{brand} Kids Waterproof Puddle Suit, {colour}, {rng.choice(KIDS_AGES)}",
    )
    return rng.choice(choices)


# --- Jewelry --------------------------------------------------------------------------------

METALS = (
    "Sterling Silver", "925 Silver", "9ct Yellow Gold", "9ct White Gold", "18ct Rose Gold",
    "14K Gold Plated", "Stainless Steel", "Platinum", "Titanium",
)  # fmt: skip
STONES = (
    "Diamond",
    "Cubic Zirconia",
    "Sapphire",
    "Emerald",
    "Ruby",
    "Pearl",
    "Amethyst",
    "Opal",
    "Moissanite",
)
PIECES = (
    "Pendant Necklace", "Stud Earrings", "Hoop Earrings", "Drop Earrings", "Tennis Bracelet",
    "Charm Bracelet", "Bangle", "Eternity Ring", "Solitaire Engagement Ring", "Signet Ring",
    "Wedding Band", "Anklet", "Cufflinks", "Brooch", "Locket",
)  # fmt: skip


def _fine_jewellery(rng: random.Random) -> str:
    metal = rng.choice(METALS)
    stone = rng.choice(STONES)
    piece = rng.choice(PIECES)
    size = ""
    if piece.endswith(("Ring", "Band")):
        size = f", Size {rng.choice('JKLMNOPQRS')}"
    elif piece.endswith(("Necklace", "Locket")):
        size = f", {rng.choice(('16', '18', '20'))} inch Chain"
    who = rng.choice(("Women's ", "Men's ", "Ladies ", "Kids ", ""))
    carat = rng.choice(("0.10ct", "0.25ct", "0.50ct", "1ct", "1.5ct"))
    templates = (
        f"{who}{metal} {carat} {stone} {piece}{size}",
        f"{metal} {stone} {piece} in Gift Box{size}",
        f"{rng.choice(('Beaverbrooks', 'H.Samuel', 'Ernest Jones', 'Tiffany & Co.', 'Links of London'))} "
        f"{metal} {stone} {piece}{size}",
    )
    return rng.choice(templates)


def _fashion_jewellery(rng: random.Random) -> str:
    colour = rng.choice(COLOURS)
    choices = (
        f"Pandora Moments {rng.choice(('Snake Chain', 'Heart Clasp', 'Studded Chain'))} Bracelet "
        f"Sterling Silver {rng.choice((16, 17, 18, 19, 20, 21))}cm",
        f"Pandora {rng.choice(('Sparkling Heart', 'Family Tree', 'Disney Mickey', 'Infinity Knot'))} "
        f"Charm {rng.choice(('Sterling Silver', '14k Rose Gold-Plated'))}",
        f"Swarovski {rng.choice(('Attract', 'Millenia', 'Constella', 'Sparkling Dance'))} "
        f"{rng.choice(('Round Stud Earrings', 'Pendant', 'Bracelet', 'Hoop Earrings'))}, "
        f"{colour}, {rng.choice(('Rhodium Plated', 'Gold-Tone Plated', 'Rose Gold-Tone'))}",
        f"Men's Leather Bracelet {colour} Braided with Stainless Steel Magnetic Clasp "
        f"{rng.choice((19, 20, 21, 22))}cm",
        f"Kids Heart Locket Necklace {rng.choice(METALS)} with Engraving, {rng.choice(('14', '16'))} inch",
        f"Thomas Sabo {rng.choice(('Charm Club', 'Glam & Soul'))} "
        f"{rng.choice(('Bracelet', 'Necklace', 'Earrings', 'Ring'))} {rng.choice(METALS)}",
    )
    return rng.choice(choices)


def _watch(rng: random.Random) -> str:
    brand, line, model = rng.choice(
        (("Casio", "Collection", f"MTP-{rng.randint(1200, 1399)}PD-1A"),
         ("Casio", "G-Shock", f"GA-{rng.randint(100, 2100)}-1A1ER"),
         ("Seiko", "5 Sports Automatic", f"SRPD{rng.randint(50, 99)}K1"),
         ("Citizen", "Eco-Drive", f"BM{rng.randint(7100, 8599)}-{rng.randint(10, 99)}L"),
         ("Fossil", "Grant Chronograph", f"FS{rng.randint(4700, 5999)}"),
         ("Fossil", "Jacqueline", f"ES{rng.randint(3000, 5300)}"),
         ("Tissot", "PRX", f"T137.410.{rng.randint(11, 17)}.041.00"),
         ("Daniel Wellington", "Petite", f"DW00100{rng.randint(160, 499)}"),
         ("Michael Kors", "Lexington", f"MK{rng.randint(5500, 8999)}"))
    )  # fmt: skip
    who = rng.choice(("Men's", "Women's", "Unisex", "Kids"))
    strap = rng.choice(("Leather Strap", "Stainless Steel Bracelet", "Silicone Strap", "Mesh Strap"))
    case = rng.choice((28, 32, 36, 40, 42, 44))
    templates = (
        f"{brand} {who} {line} Watch {model} with {strap}",
        f"{brand} {model} {who} {line} {case}mm {rng.choice(COLOURS)} Dial Watch",
        f"{brand} {line} {who} Analogue Quartz Watch, {strap}, {model}",
    )
    return rng.choice(templates)


# --- Shoes ----------------------------------------------------------------------------------

SHOE_MODELS = (
    ("Nike", "Air Max 90", "Trainers"), ("Nike", "Air Force 1 '07", "Trainers"),
    ("Nike", "Pegasus 40", "Running Shoes"), ("Adidas", "Stan Smith", "Trainers"),
    ("Adidas", "Superstar", "Sneakers"), ("Adidas", "Ultraboost 22", "Running Shoes"),
    ("Adidas", "Copa Pure.3 FG", "Football Boots"), ("New Balance", "574", "Trainers"),
    ("Asics", "Gel-Kayano 30", "Running Shoes"), ("Vans", "Old Skool", "Skate Shoes"),
    ("Converse", "Chuck Taylor All Star Hi", "Sneakers"), ("Puma", "Suede Classic", "Trainers"),
    ("Reebok", "Club C 85", "Trainers"), ("Skechers", "Go Walk 6", "Walking Shoes"),
    ("Dr. Martens", "1460", "Lace Up Boots"), ("Dr. Martens", "2976", "Chelsea Boots"),
    ("Timberland", "6-Inch Premium", "Waterproof Boots"), ("Clarks", "Desert Boot", "Boots"),
    ("Birkenstock", "Arizona", "Sandals"), ("Crocs", "Classic Clog", "Clogs"),
    ("UGG", "Classic Short II", "Sheepskin Boots"), ("Hoka", "Clifton 9", "Running Shoes"),
    ("Salomon", "XA Pro 3D GTX", "Trail Running Shoes"), ("Geox", "Nebula", "Sneakers"),
    ("Merrell", "Moab 3 Mid GTX", "Hiking Boots"), ("Havaianas", "Top", "Flip Flops"),
)  # fmt: skip
SHOE_TYPES = (
    "Trainers", "Running Shoes", "Boots", "Chelsea Boots", "Ankle Boots", "Hiking Boots",
    "Sandals", "Loafers", "Brogues", "Ballet Flats", "Court Shoes", "Slippers", "Mules",
    "School Shoes", "Wellington Boots",
)  # fmt: skip
SHOE_MATERIALS = ("Leather", "Suede", "Canvas", "Mesh", "Nubuck", "Patent Leather", "Knit")


def _shoe_size(rng: random.Random, who: str) -> str:
    if who.startswith(("Kids", "Boys", "Girls")):
        return f"UK {rng.choice(('10 Child', '12 Child', '13 Child', '1', '2', '3'))}"
    system = rng.choice(("UK", "EU", "US"))
    if system == "EU":
        return f"EU {rng.randint(36, 46)}"
    return f"{system} {rng.randint(3, 12)}{rng.choice(('', '.5'))}"


def _branded_shoe(rng: random.Random) -> str:
    brand, model, kind = rng.choice(SHOE_MODELS)
    who = rng.choice(("Men's", "Women's", "Kids'", "Unisex", "Boys'", "Girls'"))
    colour = rng.choice(COLOURS)
    size = _shoe_size(rng, who)
    style = f"{_code(rng, 2, 4)}-{rng.choice(('001', '100', '400', '600'))}"
    templates = (
        f"{brand} {model} {who} {kind}, {colour}/{rng.choice(COLOURS)}, {size}",
        f"{brand} {who} {model} {kind} {colour} {size}",
        f"{brand} {model} {kind} {style} {colour} - {size}",
    )
    return rng.choice(templates)


def _unbranded_shoe(rng: random.Random) -> str:
    who = rng.choice(("Men's", "Women's", "Ladies", "Kids", "Boys", "Girls"))
    material = rng.choice(SHOE_MATERIALS)
    kind = rng.choice(SHOE_TYPES)
    colour = rng.choice(COLOURS)
    size = _shoe_size(rng, who)
    width = rng.choice(("", " Wide Fit", " E Fit", " Extra Wide"))
    closure = rng.choice(("Lace Up", "Slip On", "Zip Up", "Touch Fastening", "Buckle"))
    templates = (
        f"{who} {material} {closure} {kind} {colour} Size {size}{width}",
        f"{who} {kind} {closure} {material} Upper, Non-Slip Rubber Sole, {colour}, {size}",
        f"Clarks {who} {rng.choice(('Un Rio', 'Tilden', 'Cora', 'Emslie', 'Orinoco'))} "
        f"{material} {kind} {colour} {rng.randint(3, 11)} {rng.choice('DEFG')}",
    )
    return rng.choice(templates)


GENERATORS: dict[str, tuple[Generator, ...]] = {
    "Automotive": (
        _wiper_blades, _engine_oil, _spark_plugs, _brakes, _tyre, _bulbs, _filter,
        _car_accessory, _car_accessory,
    ),
    "Baby": (_nappies, _wipes, _feeding, _feeding, _baby_gear, _baby_gear, _baby_clothes),
    "Books": (_novel, _novel, _novel, _nonfiction, _nonfiction),
    "Clothing": (_garment, _garment, _garment, _jeans, _underwear_accessories),
    "Jewelry": (_fine_jewellery, _fine_jewellery, _fashion_jewellery, _watch),
    "Shoes": (_branded_shoe, _branded_shoe, _unbranded_shoe),
}  # fmt: skip
# Generous: with per_class=400 fewer than one draw in ten is a duplicate.
MAX_DRAWS_PER_TITLE = 50


def generate(per_class: int = 400, seed: int = 0) -> list[LabeledTitle]:
    """`per_class` distinct titles for every category, shuffled; the same list for the same seed."""
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    rng = random.Random(seed)
    records: list[LabeledTitle] = []
    for category, generators in GENERATORS.items():
        titles: dict[str, None] = {}
        for _ in range(per_class * MAX_DRAWS_PER_TITLE):
            titles.setdefault(rng.choice(generators)(rng), None)
            if len(titles) == per_class:
                break
        else:
            raise ValueError(f"cannot make {per_class} distinct {category} titles")
        records.extend(LabeledTitle(title, category) for title in titles)
    rng.shuffle(records)
    return records
