"Argument types shared by the benchmark scripts: a value out of bounds is an argparse error (usage and message), not a traceback."
import argparse


def int_at_least(low:int):
    "An argparse `type`: an integer >= `low`."
    def parse(text:str) -> int:
        try: value = int(text)
        except ValueError: raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low: raise argparse.ArgumentTypeError(f"{value} is less than {low}")
        return value
    return parse


positive_int = int_at_least(1)


def positive_float(text:str) -> float:
    "An argparse `type`: a number > 0."
    try: value = float(text)
    except ValueError: raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0: raise argparse.ArgumentTypeError(f"{text} is not greater than 0")
    return value


def positive_ints(text:str) -> list[int]:
    "An argparse `type`: comma-separated integers >= 1, e.g. '1,8,64'."
    return [positive_int(part.strip()) for part in text.split(',')]
