// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title FeeOnTransferToken: burns a fee out of every transfer (tests only)
/// @notice The sender is debited the full amount, the recipient credited the amount less
/// `feeBasisPoints` / 10000 of it (rounded down), the rest burned.
contract FeeOnTransferToken is ERC20 {
    uint256 private immutable _feeBasisPoints;

    constructor(uint256 feeBasisPoints) ERC20("Fee Token", "FEE") {
        _feeBasisPoints = feeBasisPoints;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = (value * _feeBasisPoints) / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, value - fee);
    }
}
