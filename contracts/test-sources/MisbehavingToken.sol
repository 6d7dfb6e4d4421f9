// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title MisbehavingToken: an ERC-20 whose transfers misbehave on demand (tests only)
/// @notice Modes: Normal; ReturnFalse (moves nothing, returns false); Revert (reverts with
/// {TransferRefused}); Lie (moves nothing, returns true); Reenter (moves the tokens, then
/// calls `target` with `callData` and records what came back, as a token with transfer hooks
/// would let a pledger do).
contract MisbehavingToken is ERC20 {
    enum Mode {
        Normal,
        ReturnFalse,
        Revert,
        Lie,
        Reenter
    }

    error TransferRefused();

    Mode public mode;
    address public target;
    bytes public callData;
    bytes public lastReentryResult;
    bool public lastReentrySucceeded;

    constructor() ERC20("Misbehaving Token", "BAD") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setMode(Mode mode_) external {
        mode = mode_;
    }

    function setReentry(address target_, bytes calldata callData_) external {
        target = target_;
        callData = callData_;
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        if (mode == Mode.Revert) revert TransferRefused();
        if (mode == Mode.ReturnFalse) return false;
        if (mode == Mode.Lie) return true;
        super.transfer(to, value);
        _reenter();
        return true;
    }

    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        if (mode == Mode.Revert) revert TransferRefused();
        if (mode == Mode.ReturnFalse) return false;
        if (mode == Mode.Lie) return true;
        super.transferFrom(from, to, value);
        _reenter();
        return true;
    }

    function _reenter() private {
        if (mode == Mode.Reenter) {
            (lastReentrySucceeded, lastReentryResult) = target.call(callData);
        }
    }
}
