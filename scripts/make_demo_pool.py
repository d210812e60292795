#!/usr/bin/env python3
"""Generate the bundled activeit demo pool: small, original NI-format instruction tasks.

Run `python scripts/make_demo_pool.py` (standard library only). The output is byte-identical for
a given `--seed`, so the committed pool can be checked by regenerating it.
"""
from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "src" / "activeit" / "data" / "demo"
MIN_INSTANCES, MAX_INSTANCES = 30, 60
MAX_LABELS = 10  # the cls rule of DESIGN.md section 1

Item = tuple[str, list[str]]  # (input, acceptable outputs; the first one is the target)


def parse_table(text: str) -> list[Item]:
    """Parse 'key=a,b; key2=c' into [(key, [a, b]), (key2, [c])]; keeps curated tables short."""
    entries = [e.strip() for e in text.split(";") if e.strip()]
    return [(k.strip(), [v.strip() for v in vals.split(",")])
            for k, _, vals in (e.partition("=") for e in entries)]


def labelled(groups: dict[str, str]) -> list[Item]:
    """{'label': 'word word'} -> [(word, [label]), ...]; an underscore stands for a space."""
    return [(w.replace("_", " "), [label]) for label, ws in groups.items() for w in ws.split()]


# --------------------------------------------------------------------------- curated data
NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                "fourteen fifteen sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
NAMES = "Maria Tom Lena Omar Grace Ivan Priya Leo Sofia Daniel".split()
COMMON_NOUNS = (  # everyday nouns for the letter-level tasks; about a third start with a vowel
    "apple table garden window river pencil basket candle mirror ladder rocket planet island "
    "orange violin castle forest bottle jacket kitten lemon dragon wallet camera bridge tiger "
    "engine ocean umbrella eagle olive anchor puzzle carpet helmet farmer blanket spider cookie "
    "monkey pillow hammer button desert rabbit saddle turtle parrot onion igloo elbow insect "
    "uncle arrow oven iron acorn ink ant").split()

ANTONYM_PAIRS = [tuple(p.split(":")) for p in (
    "hot:cold big:small tall:short fast:slow happy:sad light:dark open:closed up:down early:late "
    "hard:soft full:empty strong:weak rich:poor wet:dry young:old new:old thick:thin loud:quiet "
    "clean:dirty high:low long:short cheap:expensive heavy:light push:pull win:lose buy:sell "
    "first:last inside:outside above:below north:south east:west left:right day:night "
    "black:white love:hate true:false friend:enemy safe:dangerous easy:difficult good:bad "
    "right:wrong wide:narrow alive:dead asleep:awake always:never smooth:rough sweet:sour "
    "remember:forget maximum:minimum increase:decrease enter:exit polite:rude").split()]
ANTONYM_EXTRA = dict(parse_table(  # further correct opposites accepted as answers
    "big=little; small=large; happy=unhappy; open=shut; slow=quick; hard=easy; easy=hard; "
    "difficult=simple; dead=living; exit=entrance; lose=find; enemy=ally"))
SYNONYMS = parse_table(
    "big=large,huge; small=little,tiny; happy=glad,cheerful,joyful; sad=unhappy,sorrowful; "
    "fast=quick,rapid,speedy; begin=start,commence; finish=end,complete; "
    "smart=clever,intelligent; angry=mad,furious; easy=simple; difficult=hard,tough; "
    "rich=wealthy; chilly=cold,cool; close=shut,near; buy=purchase; quiet=silent,calm; "
    "stone=rock; shout=yell,scream; jump=leap,hop; gift=present; pretty=beautiful,lovely; "
    "scared=afraid,frightened; tired=sleepy,exhausted; ill=sick,unwell; fix=repair,mend; "
    "choose=pick,select; correct=right; huge=enormous,gigantic; talk=speak,chat; hurry=rush; "
    "brave=courageous,bold; funny=amusing,humorous; strange=odd,weird; center=middle; "
    "near=close,nearby; sofa=couch; trash=garbage,rubbish; child=kid; answer=reply,response; "
    "help=assist,aid; autumn=fall; trousers=pants; street=road; shy=timid; wet=soaked,damp; "
    "rapid=fast,quick; famous=well-known,celebrated")
CAPITALS = parse_table(  # country=capital[,accepted spelling]
    "France=Paris; Germany=Berlin; Italy=Rome; Spain=Madrid; Portugal=Lisbon; Japan=Tokyo; "
    "China=Beijing; India=New Delhi; Egypt=Cairo; Kenya=Nairobi; Canada=Ottawa; "
    "Mexico=Mexico City; Brazil=Brasília,Brasilia; Argentina=Buenos Aires; Peru=Lima; "
    "Chile=Santiago; Colombia=Bogotá,Bogota; Australia=Canberra; New Zealand=Wellington; "
    "Russia=Moscow; Poland=Warsaw; Greece=Athens; Turkey=Ankara; Norway=Oslo; Sweden=Stockholm; "
    "Finland=Helsinki; Denmark=Copenhagen; Ireland=Dublin; the United Kingdom=London; "
    "Austria=Vienna; Hungary=Budapest; the Czech Republic=Prague; the Netherlands=Amsterdam; "
    "Belgium=Brussels; Thailand=Bangkok; Vietnam=Hanoi; South Korea=Seoul; "
    "the Philippines=Manila; Nigeria=Abuja; Ghana=Accra; Ethiopia=Addis Ababa; Morocco=Rabat; "
    "Cuba=Havana; Iran=Tehran; Iraq=Baghdad; Saudi Arabia=Riyadh; Pakistan=Islamabad; "
    "Bangladesh=Dhaka; Nepal=Kathmandu; Ukraine=Kyiv,Kiev; Romania=Bucharest; "
    "Venezuela=Caracas; Uruguay=Montevideo; Jamaica=Kingston; Iceland=Reykjavík,Reykjavik")
CONTINENTS = {
    "Europe": "France Germany Spain Italy Portugal Poland Norway Sweden Finland Greece Ireland "
              "Austria Hungary Netherlands Belgium",
    "Asia": "Japan China India Thailand Vietnam Nepal Mongolia Pakistan Bangladesh Philippines "
            "South_Korea Laos",
    "Africa": "Kenya Nigeria Ghana Ethiopia Morocco Senegal Tanzania Uganda Zambia Botswana "
              "Angola Mali",
    "North America": "Canada Mexico United_States Cuba Guatemala Honduras Jamaica Costa_Rica",
    "South America": "Brazil Argentina Chile Peru Colombia Bolivia Uruguay Paraguay Ecuador "
                     "Venezuela",
    "Oceania": "Australia New_Zealand Fiji Samoa Tonga Papua_New_Guinea",
}
ANIMAL_CLASSES = {
    "mammal": "dog cat horse cow elephant whale dolphin bat lion tiger rabbit bear giraffe monkey "
              "sheep goat mouse kangaroo camel zebra fox wolf deer",
    "bird": "eagle sparrow penguin ostrich owl parrot robin pigeon duck swan flamingo crow hawk "
            "pelican peacock chicken",
    "fish": "salmon tuna trout shark goldfish cod carp catfish herring sardine mackerel swordfish",
    "reptile": "snake lizard crocodile alligator turtle tortoise iguana gecko chameleon cobra",
    "insect": "ant bee butterfly mosquito beetle grasshopper ladybug wasp dragonfly moth termite "
              "housefly",
}
FRUIT_OR_VEGETABLE = {  # botanical fruits eaten as vegetables (tomato, cucumber ...) left out
    "fruit": "apple banana pear grape mango pineapple strawberry cherry peach plum kiwi "
             "watermelon lemon apricot blueberry raspberry papaya fig pomegranate lime "
             "grapefruit nectarine",
    "vegetable": "carrot potato onion broccoli cabbage spinach lettuce celery cauliflower radish "
                 "turnip beetroot leek kale asparagus parsnip artichoke sweet_potato garlic "
                 "Brussels_sprout",
}
ANIMAL_SOUNDS = parse_table(  # animal/plural=sounds
    "dog/dogs=bark,woof; cat/cats=meow,miaow,purr; cow/cows=moo; sheep/sheep=baa,bleat; "
    "pig/pigs=oink,grunt; horse/horses=neigh,whinny; duck/ducks=quack; lion/lions=roar; "
    "snake/snakes=hiss; owl/owls=hoot; bee/bees=buzz; mouse/mice=squeak; frog/frogs=croak,ribbit; "
    "donkey/donkeys=bray,hee-haw; rooster/roosters=crow,cock-a-doodle-doo; hen/hens=cluck; "
    "goat/goats=bleat,baa; wolf/wolves=howl; elephant/elephants=trumpet; crow/crows=caw; "
    "turkey/turkeys=gobble; dove/doves=coo; goose/geese=honk; bear/bears=growl,roar; "
    "tiger/tigers=roar,growl; cricket/crickets=chirp; chick/chicks=cheep,peep,chirp; "
    "mosquito/mosquitoes=buzz,whine; pigeon/pigeons=coo")
ANIMAL_YOUNG = dict(parse_table(
    "dog=puppy,pup; cat=kitten; cow=calf; horse=foal; sheep=lamb; goat=kid; pig=piglet; "
    "duck=duckling; goose=gosling; chicken=chick; frog=tadpole; kangaroo=joey; bear=cub; "
    "deer=fawn; owl=owlet; swan=cygnet; eagle=eaglet; butterfly=caterpillar; seal=pup; whale=calf"))
PLURALS = parse_table(
    "cat=cats; box=boxes; baby=babies; child=children; mouse=mice; goose=geese; foot=feet; "
    "tooth=teeth; man=men; woman=women; person=people; leaf=leaves; knife=knives; wolf=wolves; "
    "city=cities; bus=buses; church=churches; potato=potatoes; tomato=tomatoes; hero=heroes; "
    "dish=dishes; glass=glasses; fox=foxes; story=stories; party=parties; key=keys; toy=toys; "
    "day=days; book=books; car=cars; tree=trees; bird=birds; house=houses; chair=chairs; "
    "cherry=cherries; lady=ladies; half=halves; shelf=shelves; life=lives; wife=wives; "
    "calf=calves; ox=oxen; photo=photos; piano=pianos; roof=roofs; watch=watches; "
    "brush=brushes; class=classes")
PAST_TENSES = parse_table(
    "walk=walked; play=played; jump=jumped; cry=cried; stop=stopped; go=went; eat=ate; see=saw; "
    "run=ran; swim=swam; write=wrote; take=took; give=gave; buy=bought; bring=brought; "
    "think=thought; teach=taught; catch=caught; sing=sang; drink=drank; begin=began; "
    "speak=spoke; break=broke; choose=chose; drive=drove; fly=flew; draw=drew; grow=grew; "
    "know=knew; throw=threw; sleep=slept; keep=kept; feel=felt; leave=left; meet=met; sit=sat; "
    "stand=stood; win=won; tell=told; sell=sold; find=found; make=made; pay=paid; say=said; "
    "come=came; become=became; dance=danced; smile=smiled; plan=planned; try=tried; "
    "carry=carried; study=studied; hope=hoped; learn=learned,learnt; dream=dreamed,dreamt; "
    "burn=burned,burnt")
SPELLING_WORDS = (
    "garden window basket kitchen library monster pencil summer travel unicorn village weather "
    "example family holiday journey number picture question rainbow station teacher thunder "
    "blanket chicken dolphin captain brother country diamond elephant freedom history machine "
    "morning package rocket secret sister student").split()
GREETINGS = {lang: text.split(" | ") for lang, text in {
    "English": "Good morning, how are you? | Nice to meet you. | Thank you very much. | "
               "See you tomorrow. | Have a nice day. | Good night and sleep well. | "
               "Welcome to our home. | How was your weekend? | "
               "Excuse me, where is the station? | I love this city.",
    "French": "Bonjour, comment allez-vous ? | Ravi de vous rencontrer. | Merci beaucoup. | "
              "À demain. | Bonne journée. | Bonne nuit et dors bien. | Bienvenue chez nous. | "
              "Comment était ton week-end ? | Excusez-moi, où est la gare ? | "
              "J'adore cette ville.",
    "Spanish": "Buenos días, ¿cómo estás? | Mucho gusto. | Muchas gracias. | Hasta mañana. | "
               "Que tengas un buen día. | Buenas noches y que duermas bien. | "
               "Bienvenido a nuestra casa. | ¿Qué tal tu fin de semana? | "
               "Perdón, ¿dónde está la estación? | Me encanta esta ciudad.",
    "German": "Guten Morgen, wie geht es dir? | Freut mich, dich kennenzulernen. | "
              "Vielen Dank. | Bis morgen. | Einen schönen Tag noch. | "
              "Gute Nacht und schlaf gut. | Willkommen bei uns. | Wie war dein Wochenende? | "
              "Entschuldigung, wo ist der Bahnhof? | Ich liebe diese Stadt.",
    "Italian": "Buongiorno, come stai? | Piacere di conoscerti. | Grazie mille. | A domani. | "
               "Buona giornata. | Buonanotte e dormi bene. | Benvenuto a casa nostra. | "
               "Com'è andato il tuo fine settimana? | Scusi, dov'è la stazione? | "
               "Adoro questa città.",
}.items()}
OBJECT_COLORS = parse_table(  # thing=usual color[,also accepted]
    "fresh snow=white; coal=black; healthy grass=green; the sky on a clear sunny day=blue; "
    "a ripe banana=yellow; a carrot=orange; a ripe strawberry=red; milk=white; "
    "milk chocolate=brown; a ripe lemon=yellow; a pumpkin=orange; a crow=black; "
    "a flamingo=pink; an elephant=gray,grey; a polar bear's fur=white; an emerald=green; "
    "a ruby=red; a ripe tomato=red; an eggplant=purple; a blueberry=blue,purple; "
    "table salt=white; a tangerine=orange; a pea=green; a raven=black; raw cotton=white; "
    "a sunflower petal=yellow; a lavender flower=purple; a pine needle=green; tar=black; "
    "ground cinnamon=brown; a grizzly bear=brown; a pet canary=yellow; a cooked lobster=red; "
    "an egg yolk=yellow,orange; a lime=green; broccoli=green; a cucumber=green; "
    "the inside of a ripe watermelon=red,pink; a school bus in the United States=yellow; "
    "a giant panda=black and white,white and black; a zebra=black and white,white and black")
ODD_GROUPS = {  # no word belongs to two groups (no orange, peach, plum ...)
    "fruit": "apple banana pear grape mango melon pineapple coconut strawberry",
    "animal": "dog cat horse cow lion tiger rabbit sheep goat bear",
    "color": "red blue green yellow purple pink brown black white gray",
    "vehicle": "car bus train bicycle truck airplane boat tractor scooter helicopter",
    "body part": "arm leg hand foot nose ear elbow knee shoulder finger",
    "instrument": "piano guitar violin drum flute trumpet cello harp trombone clarinet",
    "furniture": "chair table sofa bed desk shelf wardrobe stool bench cupboard",
    "clothing": "shirt jacket sock hat scarf glove dress coat skirt sweater",
}
SHAPE_SIDES = {"triangle": 3, "square": 4, "rectangle": 4, "pentagon": 5, "hexagon": 6,
               "heptagon": 7, "octagon": 8, "nonagon": 9, "decagon": 10}
UNIT_FACTORS = [("hours", "minutes", 60), ("minutes", "seconds", 60), ("days", "hours", 24),
                ("weeks", "days", 7), ("years", "months", 12), ("kilometers", "meters", 1000),
                ("meters", "centimeters", 100), ("kilograms", "grams", 1000)]
STATEMENT_SUBJECTS = ["Maria", "Tom", "The baby", "My uncle", "The old cat", "Our teacher",
                      "The driver", "Lena"]
STATEMENT_PREDICATES = [("is", "hungry"), ("is", "in the kitchen"), ("can", "see the moon"),
                        ("will", "sleep early"), ("was", "happy yesterday"),
                        ("has", "eaten breakfast"), ("is", "very quiet"),
                        ("can", "hear the music"), ("will", "be here soon"),
                        ("was", "in the garden"), ("has", "seen the photo")]
NEGATED = {"is": ["is not", "isn't"], "was": ["was not", "wasn't"], "has": ["has not", "hasn't"],
           "will": ["will not", "won't"], "can": ["cannot", "can not", "can't"]}


# --------------------------------------------------------------------------- helpers
def article(noun: str) -> str:
    """'an owl' / 'a dog': enough for the curated nouns used here."""
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def number_to_words(n: int) -> list[str]:
    """English spelling of 0..999: the hyphenated form first, then accepted variants."""
    def below_100(k: int) -> str:
        if k < 20 or k % 10 == 0:
            return NUMBER_WORDS[k] if k < 20 else TENS[k // 10]
        return f"{TENS[k // 10]}-{NUMBER_WORDS[k % 10]}"

    if n < 100:
        forms = [below_100(n)]
    elif n % 100 == 0:
        forms = [f"{NUMBER_WORDS[n // 100]} hundred"]
    else:
        head, tail = f"{NUMBER_WORDS[n // 100]} hundred", below_100(n % 100)
        forms = [f"{head} {tail}", f"{head} and {tail}"]
    return forms + [f.replace("-", " ") for f in forms if "-" in f]


def misspell(word: str, rng: random.Random) -> str:
    """Swap two different neighbouring inner letters: a typo, not another word here."""
    i = rng.choice([i for i in range(1, len(word) - 2) if word[i] != word[i + 1]])
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def antonym_table() -> list[Item]:
    """Every word of the antonym pairs with all of its opposites, sorted by word."""
    table: dict[str, list[str]] = {}
    for a, b in ANTONYM_PAIRS:
        table.setdefault(a, []).append(b)
        table.setdefault(b, []).append(a)
    for w, extra in ANTONYM_EXTRA.items():
        table[w] += [e for e in extra if e not in table[w]]
    return sorted(table.items())


def draw(rng: random.Random, make: Callable[[random.Random], Item], count: int = 90) -> list[Item]:
    """`count` random items; the builder drops repeated inputs."""
    return [make(rng) for _ in range(count)]


# --------------------------------------------------------------------------- generators
# A generator returns candidate items; the builder removes repeated inputs, balances the labels
# of cls tasks, and draws the examples and 30-60 instances from what is left.

def review_sentiment(rng: random.Random) -> list[Item]:
    products = "speaker blender backpack lamp keyboard tent kettle jacket umbrella toaster"
    phrases = {
        "positive": "works perfectly and I use it every day | exceeded all my expectations | "
                    "is sturdy and very well made | arrived early and looks great | "
                    "is worth every penny | made my mornings so much easier",
        "negative": "broke after only two days | is flimsy and far too expensive | "
                    "stopped working within a week | arrived damaged and scratched | "
                    "was a complete waste of money | feels cheap and falls apart"}
    return [(f"{opener} {p} {s}.", [label]) for p in products.split()
            for opener in ("The", "This", "My new")
            for label, text in phrases.items() for s in text.split(" | ")]


def is_question(rng: random.Random) -> list[Item]:
    actions = ["fix the bike", "call the doctor", "water the plants", "bake the bread",
               "visit the museum", "clean the kitchen", "paint the fence"]
    templates = {"yes": ["Did {n} {a} yesterday?", "When will {n} {a}?",
                         "Why does {n} want to {a}?", "Can {n} {a} this afternoon?"],
                 "no": ["{n} wants to {a} today.", "{n} will {a} after lunch.",
                        "I asked {n} to {a}.", "{n} forgot to {a} again."]}
    return [(t.format(n=n, a=a), [label]) for n in NAMES[:5] for a in actions
            for label, ts in templates.items() for t in ts]


def sentence_topic(rng: random.Random) -> list[Item]:
    clauses = {
        "sports": "the home team won the football match by two goals | the tennis player served "
                  "an ace to win the set | the runner finished the marathon in record time | the "
                  "swimmer won a gold medal in the relay | the referee showed a red card to the "
                  "defender | the cyclists raced up the steep mountain stage",
        "food": "the bakery sold out of fresh bread | my sister cooked spicy noodles for dinner | "
                "the chef added garlic to the tomato sauce | we ate pancakes with maple syrup | "
                "the restaurant served grilled fish with rice | my father baked a chocolate cake",
        "weather": "it rained heavily across the city | strong winds knocked branches off the "
                   "trees | thick fog covered the valley | a thunderstorm rolled in over the hills "
                   "| the temperature dropped below freezing | a light drizzle fell all afternoon",
        "technology": "the company released a faster smartphone | my laptop installed a software "
                      "update | engineers tested a new computer chip | the app added a dark mode "
                      "setting | the website crashed because of heavy traffic | the programmers "
                      "fixed a bug in the code",
    }
    openers = ["Yesterday", "Last weekend", "This morning", "According to the news,"]
    return [(f"{o} {c}.", [topic]) for topic, text in clauses.items()
            for c in text.split(" | ") for o in openers]


def number_comparison(rng: random.Random) -> list[Item]:
    def make(r: random.Random) -> Item:
        a = r.randint(1, 100)
        b = a if r.random() < 0.25 else r.randint(1, 100)
        return f"{a} and {b}", ["greater" if a > b else "less" if a < b else "equal"]
    return draw(rng, make, 120)


def sum_check(rng: random.Random) -> list[Item]:
    def make(r: random.Random) -> Item:
        a, b = r.randint(2, 30), r.randint(1, 20)
        op, true = ("-", a - b) if a > b and r.random() < 0.5 else ("+", a + b)
        shown = true if r.random() < 0.5 else max(0, true + r.choice([-3, -2, -1, 1, 2, 3]))
        return f"{a} {op} {b} = {shown}", ["correct" if shown == true else "incorrect"]
    return draw(rng, make, 120)


def word_pair_relation(rng: random.Random) -> list[Item]:
    pairs = [(a, b, "antonyms") for a, b in ANTONYM_PAIRS]
    pairs += [(h, syns[0], "synonyms") for h, syns in SYNONYMS]
    return [(f"{a}, {b}" if rng.random() < 0.5 else f"{b}, {a}", [rel]) for a, b, rel in pairs]


def negation_detection(rng: random.Random) -> list[Item]:
    predicates = parse_table(  # plain=negated
        "likes the new teacher=does not like the new teacher; has finished the report=has not "
        "finished the report; will come to the party=will not come to the party; can ride a "
        "bike=cannot ride a bike; is hungry after the walk=is not hungry after the walk; always "
        "drinks tea in the morning=never drinks tea in the morning; has a pet at home=has no pets "
        "at home; wants to watch the movie=does not want to watch the movie")
    return [(f"{n} {plain}.", ["no"]) for n in NAMES for plain, _ in predicates] + \
           [(f"{n} {negated[0]}.", ["yes"]) for n in NAMES for _, negated in predicates]


def spam_detection(rng: random.Random) -> list[Item]:
    prizes, money = ["cruise", "new phone", "gift card", "laptop"], ["$500", "$900", "$2,000"]
    spam = [t.format(p) for p in prizes for t in (
        "Congratulations! You have won a {}. Click the link now to claim it.",
        "Final notice: claim your free {} today before the offer expires!",
        "WIN a {}! Just answer one easy question on our website.")]
    spam += [t.format(m) for m in money for t in (
        "Earn {} a week from home with no experience. Text JOIN now!",
        "You were chosen for a cash prize of {}. Send your card details to receive it.")]
    spam += [f"Your parcel is on hold. Pay a {f} fee at this link to release it."
             for f in ["$1.99", "$2.50", "$3"]]
    spam += ["URGENT: Your bank account is locked. Reply with your password to unlock it.",
             "Lose ten kilos in one week with this secret pill! Buy now."]
    ham = [f"Hi {n}, are we still meeting for lunch on {d}?" for n in NAMES[:4] for d in DAYS[:3]]
    ham += [f"{n}, could you send me the notes from today's class?" for n in NAMES[:4]]
    ham += [f"Thanks for the birthday card, {n}! It made my day." for n in NAMES[4:8]]
    ham += [f"Don't forget to bring the {t} to practice on {d}." for t in ("ball", "tent")
            for d in DAYS[1:4]]
    ham += ["Running ten minutes late, save me a seat please.",
            "Mom says dinner is at seven. See you at home."]
    return [(s, ["spam"]) for s in spam] + [(h, ["not spam"]) for h in ham]


def capital_fact_check(rng: random.Random) -> list[Item]:
    items = []
    for i, (country, (capital, *_)) in enumerate(CAPITALS):
        if rng.random() < 0.5:
            items.append((f"The capital of {country} is {capital}.", ["true"]))
        else:  # another country's capital: certainly false
            wrong = CAPITALS[(i + rng.randint(1, len(CAPITALS) - 1)) % len(CAPITALS)][1][0]
            items.append((f"The capital of {country} is {wrong}.", ["false"]))
    return items


def purchase_entailment(rng: random.Random) -> list[Item]:
    objs, colors = "balloon pen cup ticket shirt book".split(), "red green blue yellow".split()
    places = "market store fair".split()

    def make(r: random.Random) -> Item:
        (name, other), obj, place = r.sample(NAMES, 2), r.choice(objs), r.choice(places)
        col, col2 = r.sample(colors, 2)
        premise = f"{name} bought {r.choice(NUMBER_WORDS[2:6])} {col} {obj}s at the {place}."
        hyps = {"yes": [f"{name} bought some {obj}s.", f"{name} was at the {place}.",
                        f"{name} bought {col} {obj}s.", f"Someone bought {obj}s at the {place}."],
                "no": [f"{name} bought no {obj}s.", f"{other} bought {obj}s at the {place}.",
                       f"{name} bought {col2} {obj}s.", f"{name} sold {obj}s at the {place}.",
                       f"{name} never went to the {place}."]}
        label = r.choice(["yes", "no"])
        return f"Premise: {premise} Hypothesis: {r.choice(hyps[label])}", [label]
    return draw(rng, make, 150)


def larger_number(rng: random.Random) -> list[Item]:
    def make(r: random.Random) -> Item:
        a, b = r.sample(range(1, 1000), 2)
        return f"{a}, {b}", [str(max(a, b))]
    return draw(rng, make)


def addition(rng: random.Random) -> list[Item]:
    def make(r: random.Random) -> Item:
        a, b = r.randint(1, 60), r.randint(1, 60)
        return f"What is {a} + {b}?", [str(a + b)]
    return draw(rng, make)


def subtraction(rng: random.Random) -> list[Item]:
    def make(r: random.Random) -> Item:
        a = r.randint(10, 99)
        b = r.randint(1, a)
        return f"What is {a} - {b}?", [str(a - b)]
    return draw(rng, make)


def uppercase_phrase(rng: random.Random) -> list[Item]:
    adjectives = "big small old new red blue clean wet".split()
    nouns = "apple bottle house window road garden blanket chair".split()
    return [(f"{a} {n}", [f"{a} {n}".upper()]) for a in adjectives for n in nouns]


def count_words(rng: random.Random) -> list[Item]:
    subjects = ["The dog", "My little brother", "Our old neighbor", "Anna", "The happy children",
                "A tall man", "Sam"]
    verbs = "painted found washed sold bought cleaned fixed moved".split()
    objects = ["a box", "the red bench", "three old chairs", "the car", "a small blue bottle",
               "the heavy bag", "a bike", "the wooden table"]
    places = ["", "in the garden", "near the station", "at school", "behind the old house"]
    times = ["", "yesterday", "last summer", "this morning", "on a rainy Monday"]

    def make(r: random.Random) -> Item:
        parts = [r.choice(p) for p in (subjects, verbs, objects, places, times)]
        sentence = " ".join(p for p in parts if p) + "."
        return sentence, [str(len(sentence.split()))]
    return draw(rng, make, 120)


def animal_sound(rng: random.Random) -> list[Item]:
    items = []
    for key, sounds in ANIMAL_SOUNDS:
        animal, plural = key.split("/")
        items += [(f"What sound does {article(animal)} make?", sounds),
                  (f"What noise do {plural} make?", sounds)]
    return items


def odd_one_out(rng: random.Random) -> list[Item]:
    groups = {k: v.split() for k, v in ODD_GROUPS.items()}

    def make(r: random.Random) -> Item:
        main, odd = r.sample(sorted(groups), 2)
        odd_word = r.choice(groups[odd])
        shown = r.sample(groups[main], 3) + [odd_word]
        r.shuffle(shown)
        return ", ".join(shown), [odd_word]
    return draw(rng, make)


def alphabetical_first(rng: random.Random) -> list[Item]:
    def make(r: random.Random) -> Item:
        a, b = r.sample(COMMON_NOUNS, 2)
        return f"{a}, {b}", [min(a, b)]
    return draw(rng, make)


def next_in_sequence(rng: random.Random) -> list[Item]:
    def make(r: random.Random) -> Item:
        step = r.randint(2, 12) * r.choice([1, 1, -1])
        start = r.randint(1, 30) - (4 * step if step < 0 else 0)  # the fifth term stays positive
        terms = [start + i * step for i in range(5)]
        return ", ".join(map(str, terms[:4])), [str(terms[4])]
    return draw(rng, make)


def weekday_offset(rng: random.Random) -> list[Item]:
    items = []
    for i, day in enumerate(DAYS):
        for n in range(1, 7):
            for word, sign in (("after", 1), ("before", -1)):
                lead = f"{NUMBER_WORDS[n].capitalize()} days {word}" if n > 1 else f"The day {word}"
                items.append((f"{lead} {day} is ___.", [DAYS[(i + sign * n) % 7]]))
    return items


def shape_sides(rng: random.Random) -> list[Item]:
    items = []
    for shape, sides in SHAPE_SIDES.items():
        items.append((f"How many sides does {article(shape)} have?", [str(sides)]))
        items += [(f"How many sides do {NUMBER_WORDS[n]} {shape}s have in total?",
                   [str(n * sides)]) for n in range(2, 6)]
    return items


def make_negative(rng: random.Random) -> list[Item]:
    return [(f"{s} {aux} {rest}.", [f"{s} {neg} {rest}." for neg in NEGATED[aux]])
            for s in STATEMENT_SUBJECTS for aux, rest in STATEMENT_PREDICATES]


def statement_to_question(rng: random.Random) -> list[Item]:
    def subject(s: str) -> str:
        return s if s in NAMES else s[0].lower() + s[1:]
    return [(f"{s} {aux} {rest}.", [f"{aux.capitalize()} {subject(s)} {rest}?"])
            for s in STATEMENT_SUBJECTS for aux, rest in STATEMENT_PREDICATES]


def animal_young_analogy(rng: random.Random) -> list[Item]:
    """Pairs whose young share a name (bear/lion cub) are skipped: they give the answer away."""
    animals = sorted(ANIMAL_YOUNG)
    return [(f"{a} : {ANIMAL_YOUNG[a][0]} :: {b} : ?", ANIMAL_YOUNG[b]) for a in animals
            for b in animals if a != b and not set(ANIMAL_YOUNG[a]) & set(ANIMAL_YOUNG[b])]


# --------------------------------------------------------------------------- task table
@dataclass(frozen=True)
class Spec:
    """One demo task: what it asks, how its items are made, and why an answer is right."""
    name: str
    kind: str  # "cls" or "gen"; checked against infer_kind
    category: str
    domain: str
    definition: str
    generate: Callable[[random.Random], list[Item]]
    why: str  # explanation template, formatted with input= and output=


SPECS = [
    Spec("demo001_review_sentiment", "cls", "Sentiment Analysis", "Reviews", 'Given a short '
         'product review, decide whether the reviewer is happy with the product. Answer '
         '"positive" or "negative".', review_sentiment, 'The wording of the review is {output}.'),
    Spec("demo002_even_number", "cls", "Mathematics", "Mathematics", 'Decide whether the given '
         'number is even. Answer "yes" if it is even and "no" if it is odd.',
         lambda r: draw(r, lambda q: (str(n := q.randint(1, 999)), ["no" if n % 2 else "yes"])),
         'The last digit of {input} decides it, so the answer is "{output}".'),
    Spec("demo003_is_question", "cls", "Question Understanding", "Miscellaneous", 'Read the '
         'sentence and decide whether it asks a question. Answer "yes" for a question and "no" '
         'for a statement.', is_question, 'Word order and punctuation give "{output}".'),
    Spec("demo004_sentence_topic", "cls", "Text Categorization", "News", 'Classify the topic of '
         'the sentence. Answer with one word: "sports", "food", "weather", or "technology".',
         sentence_topic, 'The sentence talks about {output}.'),
    Spec("demo005_animal_class", "cls", "Commonsense Classification", "Animals", 'Classify the '
         'animal into its group. Answer "mammal", "bird", "fish", "reptile", or "insect".',
         lambda r: labelled(ANIMAL_CLASSES), 'The {input} belongs to the {output} group.'),
    Spec("demo006_fruit_or_vegetable", "cls", "Commonsense Classification", "Food", 'Decide '
         'whether the food is a fruit or a vegetable, in the everyday kitchen sense. Answer '
         '"fruit" or "vegetable".', lambda r: labelled(FRUIT_OR_VEGETABLE),
         'In the kitchen, {input} is used as a {output}.'),
    Spec("demo007_number_comparison", "cls", "Mathematics", "Mathematics", 'Compare the first '
         'number with the second number. Answer "greater" if the first number is bigger, "less" '
         'if it is smaller, and "equal" if both are the same.', number_comparison,
         'For {input}, the first number is {output}.'),
    Spec("demo008_sum_check", "cls", "Answer Verification", "Mathematics", 'Check the arithmetic '
         'statement. Answer "correct" if the equation is true and "incorrect" if it is false.',
         sum_check, 'Working out the left side shows that "{input}" is {output}.'),
    Spec("demo009_greeting_language", "cls", "Language Identification", "Dialogue", 'Identify the '
         'language of the sentence. Answer "English", "French", "Spanish", "German", or "Italian".',
         lambda r: [(s, [lang]) for lang, ss in GREETINGS.items() for s in ss],
         'The sentence is written in {output}.'),
    Spec("demo010_word_pair_relation", "cls", "Word Relation Classification", "Dictionary", 'You '
         'are given two words. Answer "synonyms" if they mean nearly the same thing and "antonyms" '
         'if they have opposite meanings.', word_pair_relation, 'The words {input} are {output}.'),
    Spec("demo011_negation_detection", "cls", "Linguistic Probing", "Miscellaneous", 'Does the '
         'sentence contain a negation, such as the word "not", "never" or "no"? Answer "yes" or '
         '"no".', negation_detection, 'Looking for negation words gives "{output}".'),
    Spec("demo012_spelling_check", "cls", "Spelling Error Detection", "Dictionary", 'Check the '
         'spelling of the English word. Answer "correct" if it is spelled correctly and '
         '"misspelled" if two of its letters are in the wrong order.',
         lambda r: [(w, ["correct"]) for w in SPELLING_WORDS]
         + [(misspell(w, r), ["misspelled"]) for w in SPELLING_WORDS],
         'Compared with the dictionary, "{input}" is {output}.'),
    Spec("demo013_singular_or_plural", "cls", "Linguistic Probing", "Dictionary", 'Is the English '
         'noun singular or plural? Answer "singular" or "plural".',
         lambda r: [(s, ["singular"]) for s, _ in PLURALS]
         + [(p[0], ["plural"]) for _, p in PLURALS],
         '"{input}" is the {output} form of the noun.'),
    Spec("demo014_spam_detection", "cls", "Spam Classification", "Social Media", 'Decide whether '
         'the text message is spam. Answer "spam" for scams and unwanted advertising, and '
         '"not spam" for normal personal messages.', spam_detection,
         'The content and tone of the message make it {output}.'),
    Spec("demo015_capital_fact_check", "cls", "Fact Verification", "Geography", 'Decide whether '
         'the statement about a capital city is true or false. Answer "true" or "false".',
         capital_fact_check, 'The statement "{input}" is {output}.'),
    Spec("demo016_vowel_or_consonant", "cls", "Linguistic Probing", "Dictionary", 'Look at the '
         'first letter of the word. Answer "vowel" if it is a, e, i, o or u, and "consonant" '
         'otherwise.', lambda r: [(w, ["vowel" if w[0] in "aeiou" else "consonant"])
                                  for w in COMMON_NOUNS],
         'The first letter of "{input}" is a {output}.'),
    Spec("demo017_country_continent", "cls", "Question Answering", "Geography", 'Name the '
         'continent where the country lies. Answer "Africa", "Asia", "Europe", "North America", '
         '"South America", or "Oceania".', lambda r: labelled(CONTINENTS),
         '{input} is in {output}.'),
    Spec("demo018_purchase_entailment", "cls", "Textual Entailment", "Miscellaneous", 'Read the '
         'premise and the hypothesis. Answer "yes" if the premise tells us that the hypothesis is '
         'true, otherwise answer "no".', purchase_entailment,
         'Using only the premise, the answer is "{output}".'),
    Spec("demo019_larger_number", "gen", "Mathematics", "Mathematics", 'You are given two numbers '
         'separated by a comma. Write the larger of the two numbers.', larger_number,
         '{output} is the larger number.'),
    Spec("demo020_addition", "gen", "Mathematics", "Mathematics", 'Add the two numbers and write '
         'the result as digits.', addition, 'The sum is {output}.'),
    Spec("demo021_subtraction", "gen", "Mathematics", "Mathematics", 'Subtract the second number '
         'from the first one and write the result as digits.', subtraction,
         'The difference is {output}.'),
    Spec("demo022_reverse_word", "gen", "Program Execution", "Miscellaneous", 'Write the given '
         'word backwards, letter by letter.',
         lambda r: [(w, [w[::-1]]) for w in COMMON_NOUNS if 4 <= len(w) <= 8 and w != w[::-1]],
         'Reading "{input}" from its last letter to its first gives "{output}".'),
    Spec("demo023_uppercase_phrase", "gen", "Program Execution", "Miscellaneous", 'Rewrite the '
         'given phrase using only capital letters.', uppercase_phrase,
         'Every letter of "{input}" becomes a capital letter.'),
    Spec("demo024_first_letter", "gen", "Program Execution", "Miscellaneous", 'Write only the '
         'first letter of the given word, in lower case.',
         lambda r: [(w, [w[0]]) for w in COMMON_NOUNS],
         'The word "{input}" starts with "{output}".'),
    Spec("demo025_count_words", "gen", "Program Execution", "Miscellaneous", 'Count how many words '
         'are in the sentence and write the number as digits.', count_words,
         'Counting the words separated by spaces gives {output}.'),
    Spec("demo026_antonym", "gen", "Word Semantics", "Dictionary", 'Write a word that means the '
         'opposite of the given word.', lambda r: antonym_table(),
         'The opposite of "{input}" is "{output}".'),
    Spec("demo027_synonym", "gen", "Word Semantics", "Dictionary", 'Write a different word that '
         'has the same meaning as the given word.', lambda r: SYNONYMS,
         '"{output}" means the same as "{input}".'),
    Spec("demo028_country_capital", "gen", "Question Answering", "Geography", 'Write the capital '
         'city of the given country.', lambda r: CAPITALS, 'The capital of {input} is {output}.'),
    Spec("demo029_animal_sound", "gen", "Question Answering", "Animals", 'Answer the question with '
         'the word for the sound the animal makes.', animal_sound,
         'The usual word for that sound is "{output}".'),
    Spec("demo030_plural_noun", "gen", "Linguistic Probing", "Dictionary", 'Write the plural form '
         'of the given English noun.', lambda r: PLURALS, 'The plural of "{input}" is "{output}".'),
    Spec("demo031_past_tense", "gen", "Linguistic Probing", "Dictionary", 'Write the simple past '
         'tense form of the given English verb.', lambda r: PAST_TENSES,
         'The past tense of "{input}" is "{output}".'),
    Spec("demo032_odd_one_out", "gen", "Word Semantics", "Commonsense", 'Three of the four words '
         'belong to the same group. Write the word that does not belong.', odd_one_out,
         '"{output}" is not the same kind of thing as the other three words.'),
    Spec("demo033_alphabetical_first", "gen", "Program Execution", "Dictionary", 'You are given '
         'two words. Write the word that comes first in alphabetical order.', alphabetical_first,
         'In a dictionary, "{output}" comes first.'),
    Spec("demo034_next_in_sequence", "gen", "Mathematics", "Mathematics", 'The numbers go up or '
         'down by the same amount each time. Write the next number.', next_in_sequence,
         'Continuing the pattern gives {output}.'),
    Spec("demo035_number_to_words", "gen", "Number Conversion", "Mathematics", 'Write the given '
         'number in English words.',
         lambda r: [(str(n), number_to_words(n)) for n in r.sample(range(1000), 90)],
         '{input} is written as "{output}".'),
    Spec("demo036_weekday_offset", "gen", "Fill in The Blank", "Commonsense", 'Fill in the blank '
         'with the correct day of the week.', weekday_offset,
         'Counting through the week gives {output}.'),
    Spec("demo037_object_color", "gen", "Question Answering", "Commonsense", 'Answer the question '
         'with the usual color of the thing it names.',
         lambda r: [(f"What color is {thing}?", colors) for thing, colors in OBJECT_COLORS],
         'It is usually {output}.'),
    Spec("demo038_shape_sides", "gen", "Mathematics", "Mathematics", 'Answer the question about '
         'the sides of flat shapes with a number written as digits.', shape_sides,
         'Adding up the sides of every shape gives {output}.'),
    Spec("demo039_unit_conversion", "gen", "Number Conversion", "Mathematics", 'Convert the amount '
         'to the smaller unit and write only the number as digits.',
         lambda r: [(f"How many {small} are in {n} {big}?", [str(n * f)])
                    for big, small, f in UNIT_FACTORS for n in range(2, 11)],
         'Multiplying by the size of the unit gives {output}.'),
    Spec("demo040_make_negative", "gen", "Sentence Perturbation", "Miscellaneous", 'Rewrite the '
         'sentence so that it says the opposite, by adding "not" after its first verb. Keep all '
         'other words the same.', make_negative, 'Adding "not" gives "{output}"'),
    Spec("demo041_statement_to_question", "gen", "Question Generation", "Miscellaneous", 'Turn the '
         'statement into a yes/no question by moving its first verb to the front.',
         statement_to_question, 'Moving the verb to the front gives "{output}"'),
    Spec("demo042_animal_young_analogy", "gen", "Word Analogy", "Animals", 'Complete the analogy '
         '"A : B :: C : ?". B is the name for a young A. Write the name for a young C.',
         animal_young_analogy, 'The young of that animal is called "{output}".'),
]


# --------------------------------------------------------------------------- build and check
def infer_kind(definition: str, first_outputs: list[str]) -> str:
    """The cls/gen rule of DESIGN.md section 1: a small label set, all named in the definition."""
    labels, text = set(first_outputs), definition.lower()
    small = len(labels) <= MAX_LABELS
    return "cls" if small and all(label.lower() in text for label in labels) else "gen"


def check_task(spec: Spec, task: dict) -> None:
    """Fail loudly if a generated task breaks a promise of the demo pool."""
    instances = task["Instances"]
    assert MIN_INSTANCES <= len(instances) <= MAX_INSTANCES, (spec.name, len(instances))
    firsts = [i["output"][0] for i in instances]
    assert infer_kind(spec.definition, firsts) == spec.kind, (spec.name, sorted(set(firsts)))
    examples = task["Positive Examples"] + task["Negative Examples"]
    inputs = [x["input"] for x in instances + examples]
    assert len(set(inputs)) == len(inputs), f"{spec.name}: an example repeats an instance"
    for inst in instances:
        assert 0 < len(inst["input"]) < 200 and all(o.strip() for o in inst["output"]), inst
    if spec.kind == "cls":
        assert {x["output"] for x in examples} <= set(firsts), spec.name


def interleave_labels(items: list[Item], rng: random.Random) -> list[Item]:
    """Shuffle within each label, then take the labels in turn: cls tasks stay balanced."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item[1][0], []).append(item)
    queues = [groups[label] for label in sorted(groups)]
    for queue in queues:
        rng.shuffle(queue)
    out: list[Item] = []
    while any(queues):
        out += [queue.pop(0) for queue in queues if queue]
    return out


def pick_positives(items: list[Item]) -> list[Item]:
    """Three demonstrations, with different answers where the items allow it."""
    chosen: list[Item] = []
    for item in items:
        if len(chosen) < 3 and item[1][0] not in {c[1][0] for c in chosen}:
            chosen.append(item)
    return chosen + [it for it in items if it not in chosen][: 3 - len(chosen)]


def build_task(spec: Spec, seed: int) -> dict:
    """Draw 3 positive examples, 1 negative example and 30-60 instances from the candidates."""
    rng = random.Random(f"{seed}:{spec.name}")
    items = list(dict(reversed(spec.generate(rng))).items())  # unique inputs, first one wins
    items.sort(key=lambda item: item[0])  # generation order must not leak into the sample
    if spec.kind == "cls":
        items = interleave_labels(items, rng)
    else:
        rng.shuffle(items)
    positives = pick_positives(items)
    rest = [item for item in items if item not in positives]
    negative, rest = rest[0], rest[1:]
    instances = rest[:rng.randint(MIN_INSTANCES, MAX_INSTANCES)]
    rng.shuffle(instances)
    wrong = rng.choice(sorted({outs[0] for _, outs in items} - set(negative[1])))

    def explain(inp: str, out: str) -> str:
        return spec.why.format(input=inp, output=out)

    return {
        "Contributors": ["activeit demo generator"],
        "Source": ["activeit-demo"],
        "URL": [],
        "Categories": [spec.category],
        "Reasoning": [],
        "Definition": [spec.definition],
        "Input_language": ["English"],
        "Output_language": ["English"],
        "Instruction_language": ["English"],
        "Domains": [spec.domain],
        "Positive Examples": [{"input": i, "output": o[0], "explanation": explain(i, o[0])}
                              for i, o in positives],
        "Negative Examples": [{"input": negative[0], "output": wrong, "explanation":
                               f'"{wrong}" is wrong. ' + explain(negative[0], negative[1][0])}],
        "Instances": [{"id": f"{spec.name}-{k}", "input": i, "output": list(o)}
                      for k, (i, o) in enumerate(instances)],
    }


def make_splits(specs: list[Spec], seed: int) -> dict[str, list[str]]:
    """Reference-style pool: train and dev 2 cls + 2 gen each, test 4 + 4, the rest remain."""
    rng = random.Random(f"{seed}:splits")
    cls, gen = (sorted(s.name for s in specs if s.kind == kind) for kind in ("cls", "gen"))
    rng.shuffle(cls)
    rng.shuffle(gen)
    splits = {"train": cls[0:2] + gen[0:2], "dev": cls[2:4] + gen[2:4],
              "test": cls[4:8] + gen[4:8], "remain": cls[8:] + gen[8:], "excluded": []}
    return {name: sorted(names) for name, names in splits.items()}


README = """\
# activeit demo pool

{n} small, original instruction tasks ({n_cls} classification, {n_gen} generation, {n_cat}
categories) in Super-NaturalInstructions format, small enough for a quick active
instruction-tuning demo with a ~100M-parameter model.

- `tasks/<name>.json`: one NI task file per task (definition, 3 positive examples,
  1 negative example, 30-60 instances).
- `splits/default/{{train,test}}_tasks.txt`: plain NI split.
- `splits/demo/init/{{train,dev,test,remain,excluded}}_tasks.txt`: reference-style pool state.

Generated deterministically by `python scripts/make_demo_pool.py` (seed {seed}). Do not edit
these files by hand: change the script and rerun it. All content is original, written for
activeit, and licensed like the repository (Apache-2.0).
"""


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def write_lines(path: Path, lines: list[str]) -> None:
    write_text(path, "".join(f"{line}\n" for line in lines))


def write_pool(out: Path, seed: int) -> None:
    """Write tasks, splits and README under `out`, removing stale task files first."""
    assert len({s.name for s in SPECS}) == len(SPECS), "duplicate task name"
    tasks = {spec.name: build_task(spec, seed) for spec in SPECS}
    for spec in SPECS:
        check_task(spec, tasks[spec.name])
    (out / "tasks").mkdir(parents=True, exist_ok=True)
    for stale in sorted((out / "tasks").glob("*.json")):
        stale.unlink()
    for name, task in tasks.items():
        text = json.dumps(task, indent=2, ensure_ascii=False) + "\n"
        write_text(out / "tasks" / f"{name}.json", text)
    splits = make_splits(SPECS, seed)
    for split, names in splits.items():
        write_lines(out / "splits" / "demo" / "init" / f"{split}_tasks.txt", names)
    write_lines(out / "splits" / "default" / "train_tasks.txt",
                sorted(splits["train"] + splits["dev"] + splits["remain"]))
    write_lines(out / "splits" / "default" / "test_tasks.txt", splits["test"])
    n_cls = sum(s.kind == "cls" for s in SPECS)
    write_text(out / "README.md", README.format(
        n=len(SPECS), n_cls=n_cls, n_gen=len(SPECS) - n_cls,
        n_cat=len({s.category for s in SPECS}), seed=seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="generation seed")
    args = parser.parse_args()
    write_pool(args.out, args.seed)
    print(f"wrote {len(SPECS)} tasks to {args.out}")


if __name__ == "__main__":
    main()
