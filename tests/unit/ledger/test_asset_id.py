"""Asset IDs: 17 VIN characters, position 9 an ISO 3779 check character."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger.core import check_character, validate_asset_id, with_check_character
from ledger.core.asset_id import ASSET_ID_ALPHABET
from ledger.core.errors import InvalidInput, LedgerError


def code_of(call: Callable[[], object], error: type[LedgerError]) -> str:
    """Run ``call``; fail unless it raises ``error``; return the error's stable code."""
    with pytest.raises(error) as info:
        call()
    return info.value.code


ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
CHECK_INDEX = 8

# ISO 3779 / 49 CFR 565, written out here independently of the code under test.
TRANSLITERATION = {
    **{d: int(d) for d in "0123456789"},
    "A": 1, "B": 2, "C": 3, "D": 4, "E": 5, "F": 6, "G": 7, "H": 8,
    "J": 1, "K": 2, "L": 3, "M": 4, "N": 5, "P": 7, "R": 9,
    "S": 2, "T": 3, "U": 4, "V": 5, "W": 6, "X": 7, "Y": 8, "Z": 9,
}  # fmt: skip
WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)

# Real vehicle identification numbers, valid by their published check digits.
KNOWN_VALID = ("1M8GDM9AXKP042788", "11111111111111111", "1HGCM82633A004352", "JH4KA7561PC008269")

asset_bodies = st.text(alphabet=ALPHABET, min_size=17, max_size=17)


def reference_check_character(asset_id: str) -> str:
    remainder = sum(TRANSLITERATION[c] * w for c, w in zip(asset_id, WEIGHTS, strict=True)) % 11
    return "X" if remainder == 10 else str(remainder)


def replace_at(text: str, index: int, char: str) -> str:
    return text[:index] + char + text[index + 1 :]


def test_alphabet_is_digits_and_capitals_without_i_o_q() -> None:
    assert set(ALPHABET) == ASSET_ID_ALPHABET
    assert len(ASSET_ID_ALPHABET) == 33
    assert not {"I", "O", "Q"} & ASSET_ID_ALPHABET


@pytest.mark.parametrize("asset_id", KNOWN_VALID)
def test_known_valid_ids_are_accepted_unchanged(asset_id: str) -> None:
    assert validate_asset_id(asset_id) == asset_id
    assert check_character(asset_id) == asset_id[CHECK_INDEX]
    assert with_check_character(asset_id) == asset_id


def test_check_character_x_stands_for_ten() -> None:
    assert check_character("1M8GDM9AXKP042788") == "X"


@pytest.mark.parametrize("asset_id", KNOWN_VALID)
def test_every_wrong_check_character_is_refused(asset_id: str) -> None:
    for wrong in sorted(set("0123456789X") - {asset_id[CHECK_INDEX]}):
        mistyped = replace_at(asset_id, CHECK_INDEX, wrong)
        with pytest.raises(InvalidInput) as info:
            validate_asset_id(mistyped)
        assert info.value.code == "asset_id_check_digit"
        assert repr(asset_id[CHECK_INDEX]) in info.value.message  # names the expected one
        assert info.value.detail == {"asset_id": mistyped}


@pytest.mark.parametrize(
    "asset_id",
    ["", "1M8GDM9AXKP04278", "1M8GDM9AXKP0427888", "1" * 16, "1" * 18, "1" * 1000],
)
def test_wrong_length_is_refused(asset_id: str) -> None:
    assert code_of(lambda: validate_asset_id(asset_id), InvalidInput) == "asset_id_length"
    assert code_of(lambda: with_check_character(asset_id), InvalidInput) == "asset_id_length"


def test_length_error_detail_is_bounded() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_asset_id("A" * 10_000)
    assert len(info.value.detail["asset_id"]) == 64


@pytest.mark.parametrize("letter", ["I", "O", "Q"])
@pytest.mark.parametrize("index", [0, CHECK_INDEX, 16])
def test_letters_i_o_q_are_refused(letter: str, index: int) -> None:
    asset_id = replace_at("1M8GDM9AXKP042788", index, letter)
    with pytest.raises(InvalidInput) as info:
        validate_asset_id(asset_id)
    assert info.value.code == "asset_id_alphabet"
    assert letter in info.value.message
    assert code_of(lambda: with_check_character(asset_id), InvalidInput) == "asset_id_alphabet"


@pytest.mark.parametrize(
    "asset_id",
    ["1m8gdm9axkp042788", "1M8GDM9AXKP04278 ", "1M8GDM9AXKP-42788", "1M8GDM9AXKP04278\u0661"],
)
def test_other_characters_outside_the_alphabet_are_refused(asset_id: str) -> None:
    assert code_of(lambda: validate_asset_id(asset_id), InvalidInput) == "asset_id_alphabet"


@given(asset_bodies)
def test_check_character_follows_iso_3779(body: str) -> None:
    assert check_character(body) == reference_check_character(body)


@given(asset_bodies)
def test_with_check_character_always_yields_a_valid_id(body: str) -> None:
    asset_id = with_check_character(body)
    assert validate_asset_id(asset_id) == asset_id
    assert asset_id[CHECK_INDEX] in "0123456789X"
    assert replace_at(asset_id, CHECK_INDEX, body[CHECK_INDEX]) == body  # nothing else moved
    assert with_check_character(asset_id) == asset_id


@given(asset_bodies, st.data())
def test_changing_a_character_to_one_of_another_value_is_caught(
    body: str, data: st.DataObject
) -> None:
    """ISO 3779 guarantees this: outside position 9 every weight is in 2..10, hence coprime
    to 11, and two transliterated values differ by at most 9, so the weighted sum changes
    mod 11 whenever the value does."""
    asset_id = with_check_character(body)
    index = data.draw(st.integers(0, 16).filter(lambda i: i != CHECK_INDEX), label="index")
    old = asset_id[index]
    new = data.draw(
        st.sampled_from([c for c in ALPHABET if TRANSLITERATION[c] != TRANSLITERATION[old]]),
        label="new",
    )
    mistyped = replace_at(asset_id, index, new)
    assert code_of(lambda: validate_asset_id(mistyped), InvalidInput) == "asset_id_check_digit"


@given(asset_bodies, st.sampled_from("0123456789X"))
def test_changing_the_check_character_is_caught(body: str, new: str) -> None:
    asset_id = with_check_character(body)
    assume(new != asset_id[CHECK_INDEX])
    mistyped = replace_at(asset_id, CHECK_INDEX, new)
    assert code_of(lambda: validate_asset_id(mistyped), InvalidInput) == "asset_id_check_digit"


@given(asset_bodies, st.data())
def test_a_same_value_substitution_is_not_detectable(body: str, data: st.DataObject) -> None:
    """The limit of ISO 3779: A, J and 1 (say) all count 1, so swapping one for another
    outside position 9 keeps the check character. Pinned so the table is not "fixed" into
    something that disagrees with every other VIN checker."""
    asset_id = with_check_character(body)
    index = data.draw(st.integers(0, 16).filter(lambda i: i != CHECK_INDEX), label="index")
    old = asset_id[index]
    twins = [c for c in ALPHABET if c != old and TRANSLITERATION[c] == TRANSLITERATION[old]]
    assume(twins)
    swapped = replace_at(asset_id, index, data.draw(st.sampled_from(twins), label="twin"))
    assert validate_asset_id(swapped) == swapped
