// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {EthPledgeEscrow} from "./EthPledgeEscrow.sol";
import {TokenPledgeEscrow} from "./TokenPledgeEscrow.sol";

/// @title PledgeEscrowFactory: one escrow per project, its address announced in an event
/// @notice Anyone may create escrows; a project id is scoped to its creator, so nobody can
/// take a project id away from the platform by creating it first. The chain mirror follows
/// the events whose `creator` is the platform's own account.
/// @dev The factory holds no funds and has no owner; the escrows it creates are independent.
contract PledgeEscrowFactory {
    /// @notice A new escrow for `projectId`; `token` is the zero address for an ETH escrow.
    event EscrowCreated(
        bytes32 indexed projectId,
        address indexed escrow,
        address organizer,
        address token,
        uint256 goal,
        uint256 deadline,
        uint256 minPledge,
        address indexed creator
    );

    /// @notice The project id is zero.
    error ZeroProjectId();
    /// @notice `creator` already created an escrow for `projectId`, at `escrow`.
    error ProjectAlreadyHasEscrow(bytes32 projectId, address escrow);

    mapping(address creator => mapping(bytes32 projectId => address escrow)) private _escrows;

    /// @notice Deploys an ETH escrow for `projectId`; reverts if the caller already made one.
    /// @return escrow the new escrow's address (also in {EscrowCreated})
    function createEthEscrow(
        bytes32 projectId,
        address organizer,
        uint256 goal,
        uint256 deadline,
        uint256 minPledge
    ) external returns (address escrow) {
        _checkProjectId(projectId);
        escrow = address(new EthPledgeEscrow(organizer, goal, deadline, minPledge));
        _register(projectId, escrow, organizer, address(0), goal, deadline, minPledge);
    }

    /// @notice Deploys an ERC-20 escrow of `token` for `projectId`; reverts if the caller
    /// already made one.
    /// @return escrow the new escrow's address (also in {EscrowCreated})
    function createTokenEscrow(
        bytes32 projectId,
        IERC20 token,
        address organizer,
        uint256 goal,
        uint256 deadline,
        uint256 minPledge
    ) external returns (address escrow) {
        _checkProjectId(projectId);
        escrow = address(new TokenPledgeEscrow(token, organizer, goal, deadline, minPledge));
        _register(projectId, escrow, organizer, address(token), goal, deadline, minPledge);
    }

    /// @notice The escrow `creator` made for `projectId`, or the zero address.
    function escrowOf(address creator, bytes32 projectId) external view returns (address) {
        return _escrows[creator][projectId];
    }

    function _checkProjectId(bytes32 projectId) private view {
        if (projectId == bytes32(0)) revert ZeroProjectId();
        address existing = _escrows[msg.sender][projectId];
        if (existing != address(0)) revert ProjectAlreadyHasEscrow(projectId, existing);
    }

    function _register(
        bytes32 projectId,
        address escrow,
        address organizer,
        address token,
        uint256 goal,
        uint256 deadline,
        uint256 minPledge
    ) private {
        _escrows[msg.sender][projectId] = escrow;
        emit EscrowCreated(projectId, escrow, organizer, token, goal, deadline, minPledge, msg.sender);
    }
}
