// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {PledgeEscrow} from "./PledgeEscrow.sol";

/// @title TokenPledgeEscrow: one project's pledges, in one ERC-20 token
/// @notice Approve the escrow, then {pledge} an amount. See {PledgeEscrow} for the rules.
/// @dev Decision on misbehaving tokens: the escrow books what actually arrived (its token
/// balance after the transfer minus before), never the amount asked for. A fee-on-transfer
/// token therefore books the net amount (the minimum applies to it), and a token that reports
/// success while moving nothing books nothing and the pledge reverts with {ZeroPledge}. A token
/// that returns false or reverts makes the pledge revert (SafeERC20). Outgoing transfers are
/// assumed to debit exactly the amount sent, as ERC-20 requires; rebasing tokens are not
/// supported (their balance moves without a transfer).
contract TokenPledgeEscrow is PledgeEscrow {
    using SafeERC20 for IERC20;

    /// @notice Constructor: the token is the zero address.
    error ZeroToken();

    IERC20 private immutable _token;

    /// @param token_ the ERC-20 token pledged; not the zero address
    /// @param organizer_ receives the total on finalize
    /// @param goal_ in the token's smallest unit
    /// @param deadline_ unix seconds, in the future
    /// @param minPledge_ in the token's smallest unit, at most the goal
    constructor(IERC20 token_, address organizer_, uint256 goal_, uint256 deadline_, uint256 minPledge_)
        PledgeEscrow(organizer_, goal_, deadline_, minPledge_)
    {
        if (address(token_) == address(0)) revert ZeroToken();
        _token = token_;
    }

    /// @notice Pledge `amount` of the token (approved beforehand); what arrives is booked.
    /// @dev The transfer comes before the booking because only the balance after it says what
    /// arrived; the reentrancy guard covers the window.
    function pledge(uint256 amount) external nonReentrant {
        _checkPledgeOpen();
        if (amount == 0) revert ZeroPledge();
        uint256 balanceBefore = _token.balanceOf(address(this));
        _token.safeTransferFrom(msg.sender, address(this), amount);
        _recordPledge(msg.sender, _token.balanceOf(address(this)) - balanceBefore);
    }

    /// @notice The ERC-20 token this escrow holds.
    function token() external view returns (IERC20) {
        return _token;
    }

    function _pay(address to, uint256 amount) internal override {
        _token.safeTransfer(to, amount);
    }
}
